//! A Windows Update Agent simulator: the calls, shapes and order of the native client in
//! the captures (GetConfig, GetAuthorizationCookie, GetCookie, RegisterComputer, the
//! SyncUpdates loop moving installed non-leaf ids between rounds, GetExtendedUpdateInfo
//! in batches, ReportEventBatch). Its simulated machine evaluates every non-leaf update
//! (categories, detectoids) as installed. Cheap enough to run many at once.

use std::collections::{HashMap, HashSet};

use wsus_soap::{Element, Limits};

pub const CLIENT_NS: &str = "http://www.microsoft.com/SoftwareDistribution/Server/ClientWebService";
const AUTH_NS: &str = "http://www.microsoft.com/SoftwareDistribution/Server/SimpleAuthWebService";
const REPORTING_NS: &str = "http://www.microsoft.com/SoftwareDistribution";
pub const USER_AGENT: &str = "Windows-Update-Agent/1507.2601.30012.0 Client-Protocol/2.90";
/// A shortened DeviceAttributes of the captured client's (the keys a server might read).
const DEVICE_ATTRIBUTES: &str = "App=WU_OS;AppVer=1507.2601.30012.0;DeviceFamily=Windows.Desktop;InstallationType=Client;OSArchitecture=AMD64;OSSkuId=48;OSVersion=10.0.26200.8037;ProductType=WinNT;";

/// A SOAP fault as the agent sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub status: u16,
    pub error_code: String,
    pub message: String,
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.error_code, self.status, self.message)
    }
}

impl std::error::Error for Fault {}

/// A file as an Extended fragment describes it (digests in base64).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    pub sha1: String,
    pub sha256: String,
    pub size: u64,
}

impl FileMeta {
    /// The files of an Extended fragment.
    pub fn from_extended(xml: &str) -> Vec<FileMeta> {
        let attr = |s: &str, name: &str| {
            s.split(&format!("{name}=\"")).nth(1).and_then(|v| v.split('"').next()).map(str::to_owned)
        };
        xml.split("<File ")
            .skip(1)
            .filter_map(|f| {
                Some(FileMeta {
                    sha1: attr(f, "Digest")?,
                    size: attr(f, "Size")?.parse().ok()?,
                    sha256: f.split("Algorithm=\"SHA256\">").nth(1)?.split('<').next()?.to_owned(),
                })
            })
            .collect()
    }
}

/// A device of the driver pass's SystemSpec, with what the native client tells of it
/// (captures/wsus-m0-native/flow/000014).
#[derive(Debug, Clone, Default)]
pub struct Device {
    pub hardware_ids: Vec<String>,
    pub compatible_ids: Vec<String>,
    pub installed: Option<InstalledDriver>,
    /// Extension drivers: (ExtensionId, DriverVerDate, DriverVerVersion, Class, DriverRank).
    pub extension_drivers: Vec<(String, String, String, String, i64)>,
    /// DeviceFlags (1: not Plug and Play, as printers), when sent.
    pub flags: Option<u32>,
}

/// The driver a device runs.
#[derive(Debug, Clone, Default)]
pub struct InstalledDriver {
    pub matching_id: Option<String>,
    /// `yyyy-mm-dd`.
    pub date: String,
    /// Packed four-part version.
    pub version: String,
    pub class: Option<String>,
    pub manufacturer: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    /// DriverRank; the client sends 16711680 (0x00FF0000, no feature score) for most,
    /// -1 when unknown.
    pub rank: i64,
    /// SkipProviderFiltering and IsGeneric, sent together for in-box generic drivers.
    pub generic: bool,
}

impl Device {
    /// A device known by one hardware id, running a driver of that date and version.
    pub fn with_driver(hardware_id: &str, installed: Option<(&str, &str)>) -> Self {
        Self {
            hardware_ids: vec![hardware_id.to_owned()],
            installed: installed.map(|(date, version)| InstalledDriver {
                matching_id: Some(hardware_id.to_owned()),
                date: date.to_owned(),
                version: version.to_owned(),
                class: Some("Net".into()),
                manufacturer: Some("Contoso".into()),
                provider: Some("Contoso".into()),
                model: Some("Contoso Ethernet".into()),
                rank: 16_711_680,
                generic: false,
            }),
            ..Default::default()
        }
    }

    fn xml(&self) -> String {
        let strings = |name: &str, v: &[String]| -> String {
            if v.is_empty() {
                return String::new();
            }
            let items: String = v.iter().map(|s| format!("<string>{}</string>", xml_escape(s))).collect();
            format!("<{name}>{items}</{name}>")
        };
        let opt = |name: &str, v: &Option<String>| {
            v.as_deref().map(|v| format!("<{name}>{}</{name}>", xml_escape(v))).unwrap_or_default()
        };
        const NIL: &str =
            "<MatchingComputerHWID a:nil=\"true\" xmlns:a=\"http://www.w3.org/2001/XMLSchema-instance\"/>";
        let installed = self
            .installed
            .as_ref()
            .map(|d| {
                format!(
                    "<installedDriver>{}<DriverVerDate>{}T00:00:00Z</DriverVerDate><DriverVerVersion>{}</DriverVerVersion>{}{}{}{}{NIL}<DriverRank>{}</DriverRank>{}</installedDriver>",
                    opt("MatchingID", &d.matching_id),
                    d.date,
                    d.version,
                    opt("Class", &d.class),
                    opt("Manufacturer", &d.manufacturer),
                    opt("Provider", &d.provider),
                    opt("Model", &d.model),
                    d.rank,
                    if d.generic { "<SkipProviderFiltering>true</SkipProviderFiltering><IsGeneric>true</IsGeneric>" } else { "" },
                )
            })
            .unwrap_or_default();
        let extensions = if self.extension_drivers.is_empty() {
            String::new()
        } else {
            let items: String = self
                .extension_drivers
                .iter()
                .map(|(id, date, version, class, rank)| {
                    format!("<ExtensionDriver><ExtensionId>{id}</ExtensionId><DriverVerDate>{date}T00:00:00Z</DriverVerDate><DriverVerVersion>{version}</DriverVerVersion><Class>{class}</Class><DriverRank>{rank}</DriverRank>{NIL}</ExtensionDriver>")
                })
                .collect();
            format!("<extensionDrivers>{items}</extensionDrivers>")
        };
        format!(
            "<Device>{}{}{installed}{extensions}{}</Device>",
            strings("HardwareIDs", &self.hardware_ids),
            strings("CompatibleIDs", &self.compatible_ids),
            self.flags.map(|f| format!("<DeviceFlags>{f}</DeviceFlags>")).unwrap_or_default(),
        )
    }
}

/// One update as the client received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub action: String,
    pub deployment_id: i32,
    /// Deployment/Deadline as sent, when there is one.
    pub deadline: Option<String>,
    pub is_leaf: bool,
    pub core: String,
}

/// What one full scan brought.
#[derive(Debug, Clone, Default)]
pub struct ScanOutcome {
    pub pages: usize,
    pub new: Vec<i32>,
    pub changed: Vec<(i32, String)>,
    pub out_of_scope: Vec<i32>,
}

pub struct Agent {
    http: reqwest::Client,
    base: String,
    pub client_id: String,
    pub dns_name: String,
    cookie: Option<(String, String)>,
    pub installed_non_leaf: Vec<i32>,
    pub other_cached: Vec<i32>,
    pub received: HashMap<i32, Received>,
    /// Responses that came back Xpress-encoded.
    pub xpress_responses: std::sync::atomic::AtomicUsize,
    /// The simulated machine: non-leaf updates (detectoids, categories) it evaluates as
    /// NOT installed. Everything else non-leaf evaluates as installed.
    pub absent: std::collections::HashSet<uuid::Uuid>,
    /// The group the machine asks for (Group Policy client-side targeting).
    pub target_group: Option<String>,
    /// The address a proxy in front of the server says this client calls from
    /// (X-Forwarded-For), when the agent plays one.
    pub forwarded_for: Option<String>,
    /// Categories a category scan is narrowed to (StartCategoryScan, FilterCategoryIds),
    /// as the captured "OOBE ZDP" scan was; empty for a full scan.
    pub filter_categories: Vec<uuid::Uuid>,
    /// (operation, time to the whole answer) of every call, for benchmarks.
    pub timings: std::sync::Mutex<Vec<(String, std::time::Duration)>>,
    /// Calls made to the Client service (the MS-CV sequence).
    calls: std::sync::atomic::AtomicU32,
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn descendant<'a>(e: &'a Element, name: &str) -> Option<&'a Element> {
    let mut stack = vec![e];
    while let Some(e) = stack.pop() {
        if e.name == name {
            return Some(e);
        }
        stack.extend(e.children.iter().rev());
    }
    None
}

fn envelope(body: &str) -> String {
    format!("<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>{body}</s:Body></s:Envelope>")
}

fn ints(name: &str, ids: &[i32]) -> String {
    if ids.is_empty() {
        return String::new();
    }
    let items: String = ids.iter().map(|i| format!("<int>{i}</int>")).collect();
    format!("<{name}>{items}</{name}>")
}

impl Agent {
    pub fn new(base: &str) -> Self {
        Self::with_http(base, reqwest::Client::new())
    }

    /// With an HTTP client of the caller's (one that trusts a test root, say).
    pub fn with_http(base: &str, http: reqwest::Client) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            client_id: uuid::Uuid::new_v4().to_string(),
            dns_name: "desktop-sim.lab.test".to_owned(),
            cookie: None,
            installed_non_leaf: Vec::new(),
            other_cached: Vec::new(),
            received: HashMap::new(),
            xpress_responses: Default::default(),
            absent: Default::default(),
            target_group: None,
            forwarded_for: None,
            filter_categories: Vec::new(),
            timings: Default::default(),
            calls: Default::default(),
        }
    }

    /// Posts a SOAP call with the native client's headers (captures/wsus-m0-native, e.g.
    /// GetConfig.request.headers.txt: MS-CV on the Client service only); returns the
    /// operation's response element or the fault.
    pub async fn call(&self, path: &str, action: &str, body: &str) -> Result<Element, Fault> {
        let started = std::time::Instant::now();
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("Cache-Control", "no-cache")
            .header("Connection", "Keep-Alive")
            .header("Pragma", "no-cache")
            .header("Content-Type", "text/xml; charset=utf-8")
            .header("Accept-Encoding", "xpress")
            .header("User-Agent", USER_AGENT)
            .header("SOAPAction", format!("\"{action}\""));
        if let Some(client) = &self.forwarded_for {
            request = request.header("X-Forwarded-For", client);
        }
        if path.to_ascii_lowercase().starts_with("/clientwebservice/") {
            let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            request = request.header("MS-CV", format!("me4WAo5lqUCG/53V.1.0.0.2.{n}"));
        }
        let response = request.body(envelope(body)).send().await.map_err(|e| Fault {
            status: 0,
            error_code: "Transport".into(),
            message: e.to_string(),
        })?;
        let status = response.status().as_u16();
        let xpress = response.headers().get("content-encoding").is_some_and(|v| v == "xpress");
        let raw = response.bytes().await.unwrap_or_default();
        let op = action.rsplit('/').next().unwrap_or(action).to_owned();
        self.timings.lock().expect("timings").push((op, started.elapsed()));
        if xpress {
            self.xpress_responses.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let decoded = if xpress {
            wsus_xpress::decompress(&raw, 512 * 1024 * 1024).map_err(|e| Fault {
                status,
                error_code: "Xpress".into(),
                message: e.to_string(),
            })?
        } else {
            raw.to_vec()
        };
        let text = String::from_utf8_lossy(&decoded).into_owned();
        let limits = Limits { max_body_bytes: usize::MAX, max_depth: 64, max_elements: 50_000_000 };
        let parsed = wsus_soap::parse_request(text.as_bytes(), &limits).map_err(|e| Fault {
            status,
            error_code: "Unparsable".into(),
            message: format!("{e}: {text}"),
        })?;
        if parsed.operation.name == "Fault" {
            let code = descendant(&parsed.operation, "ErrorCode").map(|e| e.value().to_owned()).unwrap_or_default();
            let message = descendant(&parsed.operation, "Message").map(|e| e.value().to_owned()).unwrap_or_default();
            return Err(Fault { status, error_code: code, message });
        }
        Ok(parsed.operation)
    }

    fn cookie_xml(&self, name: &str) -> String {
        match &self.cookie {
            Some((exp, data)) => {
                format!("<{name}><Expiration>{exp}</Expiration><EncryptedData>{data}</EncryptedData></{name}>")
            }
            None => String::new(),
        }
    }

    /// The current cookie: (Expiration, EncryptedData).
    pub fn cookie(&self) -> Option<(String, String)> {
        self.cookie.clone()
    }

    /// Takes the cookie out of a response (GetCookie, or a NewCookie).
    pub fn adopt_cookie(&mut self, response: &Element) {
        self.take_cookie(response);
    }

    /// Forgets the cookie, as a client told InvalidCookie does before authorising again.
    pub fn drop_cookie(&mut self) {
        self.cookie = None;
    }

    /// Replaces the cookie's sealed data (to test how the server treats bad cookies).
    pub fn set_cookie_data(&mut self, data: &str) {
        if let Some(c) = &mut self.cookie {
            c.1 = data.to_owned();
        }
    }

    fn take_cookie(&mut self, from: &Element) {
        if let (Some(exp), Some(data)) = (descendant(from, "Expiration"), descendant(from, "EncryptedData")) {
            self.cookie = Some((exp.value().to_owned(), data.value().to_owned()));
        }
    }

    /// Forgets the cookie once its clear-text Expiration has passed, as WUA does: its next
    /// call begins with a new handshake (MS-WUSP 3.2.5).
    pub fn expire_cookie(&mut self) {
        self.cookie = None;
    }

    /// GetConfig, GetAuthorizationCookie, GetCookie and (when `register`) RegisterComputer.
    pub async fn handshake(&mut self, register: bool) -> Result<(), Fault> {
        let config = self
            .call("/ClientWebService/client.asmx", &format!("{CLIENT_NS}/GetConfig"), &Self::get_config_body())
            .await?;
        let last_change = descendant(&config, "LastChange").map(|e| e.value().to_owned()).unwrap_or_default();
        let service_url = descendant(&config, "ServiceUrl").map(|e| e.value().to_owned()).unwrap_or_default();
        let auth = self
            .call(&format!("/{service_url}"), &format!("{AUTH_NS}/GetAuthorizationCookie"), &self.authorization_body())
            .await?;
        let plug_in = descendant(&auth, "PlugInId").map(|e| e.value().to_owned()).unwrap_or_default();
        let data = descendant(&auth, "CookieData").map(|e| e.value().to_owned()).unwrap_or_default();
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let cookie = self
            .call(
                "/ClientWebService/client.asmx",
                &format!("{CLIENT_NS}/GetCookie"),
                &Self::get_cookie_body(&plug_in, &data, &last_change, &now),
            )
            .await?;
        self.take_cookie(&cookie);
        if register {
            self.register().await?;
        }
        Ok(())
    }

    /// GetConfig as the native client sends it.
    pub fn get_config_body() -> String {
        format!("<GetConfig xmlns=\"{CLIENT_NS}\"><protocolVersion>2.90</protocolVersion></GetConfig>")
    }

    /// GetAuthorizationCookie: the client id, the group policy's target group (when set)
    /// and the DNS name.
    pub fn authorization_body(&self) -> String {
        format!(
            "<GetAuthorizationCookie xmlns=\"{AUTH_NS}\"><clientId>{}</clientId>{}<dnsName>{}</dnsName></GetAuthorizationCookie>",
            self.client_id,
            self.target_group
                .as_deref()
                .map(|g| format!("<targetGroupName>{}</targetGroupName>", xml_escape(g)))
                .unwrap_or_default(),
            self.dns_name
        )
    }

    /// GetCookie exactly as the captured client sends it: an `oldCookie` holding only an
    /// Expiration (the current time), never its sealed data, whatever cookie it held
    /// (wusp/examples/native-capture/GetCookie.request.xml).
    pub fn get_cookie_body(plug_in: &str, data: &str, last_change: &str, now: &str) -> String {
        format!(
            "<GetCookie xmlns=\"{CLIENT_NS}\"><authCookies><AuthorizationCookie><PlugInId>{plug_in}</PlugInId><CookieData>{data}</CookieData></AuthorizationCookie></authCookies><oldCookie><Expiration>{now}</Expiration></oldCookie><lastChange>{last_change}</lastChange><currentTime>{now}</currentTime><protocolVersion>2.90</protocolVersion></GetCookie>"
        )
    }

    /// StartCategoryScan for the agent's filter categories, one AND group each, as the
    /// captured category scan (no cookie: the operation takes none).
    pub fn start_category_scan_body(&self) -> String {
        let categories: String = self
            .filter_categories
            .iter()
            .enumerate()
            .map(|(i, c)| {
                format!("<CategoryRelationship><IndexOfAndGroup>{i}</IndexOfAndGroup><CategoryId>{c}</CategoryId></CategoryRelationship>")
            })
            .collect();
        format!(
            "<StartCategoryScan xmlns=\"{CLIENT_NS}\"><requestedCategories>{categories}</requestedCategories></StartCategoryScan>"
        )
    }

    /// StartCategoryScan; returns the preferred category ids.
    pub async fn start_category_scan(&self) -> Result<Vec<uuid::Uuid>, Fault> {
        let r = self
            .call(
                "/ClientWebService/client.asmx",
                &format!("{CLIENT_NS}/StartCategoryScan"),
                &self.start_category_scan_body(),
            )
            .await?;
        Ok(descendant(&r, "preferredCategoryIds")
            .map(|p| p.children.iter().filter_map(|g| g.value().parse().ok()).collect())
            .unwrap_or_default())
    }

    pub async fn register(&self) -> Result<(), Fault> {
        let body = self.register_body();
        self.call("/ClientWebService/client.asmx", &format!("{CLIENT_NS}/RegisterComputer"), &body).await.map(|_| ())
    }

    /// RegisterComputer with the captured client's ComputerInfo.
    pub fn register_body(&self) -> String {
        format!(
            "<RegisterComputer xmlns=\"{CLIENT_NS}\">{}<computerInfo><DnsName>{}</DnsName><OSMajorVersion>10</OSMajorVersion><OSMinorVersion>0</OSMinorVersion><OSBuildNumber>26200</OSBuildNumber><OSServicePackMajorNumber>0</OSServicePackMajorNumber><OSServicePackMinorNumber>0</OSServicePackMinorNumber><OSLocale>en-US</OSLocale><ComputerManufacturer>QEMU</ComputerManufacturer><ComputerModel>Standard PC (Q35 + ICH9, 2009)</ComputerModel><BiosVersion>unknown</BiosVersion><BiosName>unknown</BiosName><BiosReleaseDate>2022-02-02T00:00:00Z</BiosReleaseDate><ProcessorArchitecture>AMD64</ProcessorArchitecture><SuiteMask>256</SuiteMask><OldProductType>1</OldProductType><NewProductType>48</NewProductType><SystemMetrics>0</SystemMetrics><ClientVersionMajorNumber>1507</ClientVersionMajorNumber><ClientVersionMinorNumber>2601</ClientVersionMinorNumber><ClientVersionBuildNumber>30012</ClientVersionBuildNumber><ClientVersionQfeNumber>0</ClientVersionQfeNumber><OSDescription>Windows 10 Pro</OSDescription><OEM>QEMU</OEM><DeviceType>Standard PC (Q35 + ICH9, 2009)</DeviceType><FirmwareVersion>unknown</FirmwareVersion><MobileOperator>Not Present</MobileOperator></computerInfo></RegisterComputer>",
            self.cookie_xml("cookie"),
            self.dns_name
        )
    }

    /// One SyncUpdates call (software pass) with the agent's cached ids.
    /// The SyncUpdates request this agent would send now: (path, SOAPAction, envelope).
    pub fn sync_updates_request(&self) -> (String, String, String) {
        (
            "/ClientWebService/client.asmx".to_owned(),
            format!("\"{CLIENT_NS}/SyncUpdates\""),
            envelope(&self.sync_updates_body()),
        )
    }

    /// The software pass's SyncUpdates, in the native client's element order
    /// (captures/wsus-m0-native/scan/000006, flow/000001): the cached-id arrays left out
    /// while empty, FilterCategoryIds for a category scan.
    pub fn sync_updates_body(&self) -> String {
        let filter = if self.filter_categories.is_empty() {
            String::new()
        } else {
            let ids: String = self
                .filter_categories
                .iter()
                .map(|c| format!("<CategoryIdentifier><Id>{c}</Id></CategoryIdentifier>"))
                .collect();
            format!("<FilterCategoryIds>{ids}</FilterCategoryIds>")
        };
        format!(
            "<SyncUpdates xmlns=\"{CLIENT_NS}\">{}<parameters><ExpressQuery>false</ExpressQuery>{}{}<SkipSoftwareSync>false</SkipSoftwareSync>{filter}<NeedTwoGroupOutOfScopeUpdates>true</NeedTwoGroupOutOfScopeUpdates><AlsoPerformRegularSync>{}</AlsoPerformRegularSync><ComputerSpec/><ProductsParameters><SyncCurrentVersionOnly>false</SyncCurrentVersionOnly><DeviceAttributes>{DEVICE_ATTRIBUTES}</DeviceAttributes><CallerAttributes>Interactive=0;SheddingAware=1;Id=Sim;</CallerAttributes><Products/></ProductsParameters></parameters></SyncUpdates>",
            self.cookie_xml("cookie"),
            ints("InstalledNonLeafUpdateIDs", &self.installed_non_leaf),
            ints("OtherCachedUpdateIDs", &self.other_cached),
            self.filter_categories.is_empty(),
        )
    }

    pub async fn sync_updates_page(&mut self) -> Result<Element, Fault> {
        let body = self.sync_updates_body();
        let result = self.call("/ClientWebService/client.asmx", &format!("{CLIENT_NS}/SyncUpdates"), &body).await?;
        if let Some(c) = descendant(&result, "NewCookie") {
            self.take_cookie(c);
        }
        Ok(result)
    }

    /// The driver pass: devices as (hardware id, installed driver (date, version) if any),
    /// with the computer model ids of ComputerSpec. Returns the offered driver revision
    /// ids and DriverSyncNotNeeded.
    pub async fn driver_pass(&mut self, devices: &[Device], models: &[&str]) -> Result<(Vec<i32>, bool), Fault> {
        let body = self.driver_pass_body(devices, models);
        let result = self.call("/ClientWebService/client.asmx", &format!("{CLIENT_NS}/SyncUpdates"), &body).await?;
        if let Some(c) = descendant(&result, "NewCookie") {
            self.take_cookie(c);
        }
        let ids = descendant(&result, "NewUpdates")
            .map(|n| n.children.iter().filter_map(|u| u.child("ID").and_then(|i| i.value().parse().ok())).collect())
            .unwrap_or_default();
        let not_needed = descendant(&result, "DriverSyncNotNeeded").is_some_and(|d| d.value() == "true");
        Ok((ids, not_needed))
    }

    /// The driver pass's SyncUpdates as the native client sends it
    /// (captures/wsus-m0-native/flow/000014): SystemSpec, SkipSoftwareSync true,
    /// ComputerSpec, FeatureScoreMatchingKey, ProductsParameters; no OtherCachedUpdateIDs.
    pub fn driver_pass_body(&self, devices: &[Device], models: &[&str]) -> String {
        let devices: String = devices.iter().map(Device::xml).collect();
        let models: String = models.iter().map(|m| format!("<guid>{m}</guid>")).collect();
        format!(
            "<SyncUpdates xmlns=\"{CLIENT_NS}\">{}<parameters><ExpressQuery>false</ExpressQuery>{}<SystemSpec>{devices}</SystemSpec><SkipSoftwareSync>true</SkipSoftwareSync><NeedTwoGroupOutOfScopeUpdates>true</NeedTwoGroupOutOfScopeUpdates><AlsoPerformRegularSync>false</AlsoPerformRegularSync><ComputerSpec><HardwareIDs>{models}</HardwareIDs></ComputerSpec><FeatureScoreMatchingKey>AMD64.10.0</FeatureScoreMatchingKey><ProductsParameters><SyncCurrentVersionOnly>false</SyncCurrentVersionOnly><DeviceAttributes>{DEVICE_ATTRIBUTES}</DeviceAttributes><CallerAttributes>Interactive=0;SheddingAware=1;Id=Sim;</CallerAttributes><Products/></ProductsParameters></parameters></SyncUpdates>",
            self.cookie_xml("cookie"),
            ints("InstalledNonLeafUpdateIDs", &self.installed_non_leaf),
        )
    }

    /// A full software scan: pages until nothing is truncated and no non-leaf came back,
    /// moving every non-leaf into InstalledNonLeaf (the simulated machine has them all).
    pub async fn scan(&mut self) -> Result<ScanOutcome, Fault> {
        let mut outcome = ScanOutcome::default();
        loop {
            let page = self.sync_updates_page().await?;
            outcome.pages += 1;
            let result = descendant(&page, "SyncUpdatesResult").ok_or_else(|| Fault {
                status: 200,
                error_code: "Unparsable".into(),
                message: "no SyncUpdatesResult".into(),
            })?;
            let truncated = result.child("Truncated").is_some_and(|t| t.value() == "true");
            let mut non_leaf = false;
            for info in result.child("NewUpdates").map(|n| n.children.as_slice()).unwrap_or_default() {
                let id: i32 = info.child("ID").and_then(|i| i.value().parse().ok()).unwrap_or_default();
                let dep = info.child("Deployment");
                let is_leaf = info.child("IsLeaf").is_some_and(|l| l.value() == "true");
                let core = info.child("Xml").map(|x| x.text.clone()).unwrap_or_default();
                let update_id: Option<uuid::Uuid> =
                    core.split("UpdateID=\"").nth(1).and_then(|v| v.split('"').next()).and_then(|v| v.parse().ok());
                non_leaf |= !is_leaf;
                // The machine evaluates each non-leaf: installed ones unlock what needs them.
                if is_leaf || update_id.is_some_and(|u| self.absent.contains(&u)) {
                    self.other_cached.push(id)
                } else {
                    self.installed_non_leaf.push(id)
                }
                self.received.insert(
                    id,
                    Received {
                        action: dep.and_then(|d| d.child("Action")).map(|a| a.value().to_owned()).unwrap_or_default(),
                        deployment_id: dep
                            .and_then(|d| d.child("ID"))
                            .and_then(|i| i.value().parse().ok())
                            .unwrap_or_default(),
                        deadline: dep.and_then(|d| d.child("Deadline")).map(|d| d.value().to_owned()),
                        is_leaf,
                        core,
                    },
                );
                outcome.new.push(id);
            }
            for info in result.child("ChangedUpdates").map(|n| n.children.as_slice()).unwrap_or_default() {
                let id: i32 = info.child("ID").and_then(|i| i.value().parse().ok()).unwrap_or_default();
                let dep = info.child("Deployment");
                let action = dep.and_then(|d| d.child("Action")).map(|a| a.value().to_owned()).unwrap_or_default();
                if let Some(r) = self.received.get_mut(&id) {
                    r.action = action.clone();
                    r.deadline = dep.and_then(|d| d.child("Deadline")).map(|d| d.value().to_owned());
                }
                outcome.changed.push((id, action));
            }
            for gone in result.child("OutOfScopeRevisionIDs").map(|n| n.children.as_slice()).unwrap_or_default() {
                if let Ok(id) = gone.value().parse::<i32>() {
                    self.installed_non_leaf.retain(|x| *x != id);
                    self.other_cached.retain(|x| *x != id);
                    self.received.remove(&id);
                    outcome.out_of_scope.push(id);
                }
            }
            if !truncated && !non_leaf {
                return Ok(outcome);
            }
            if outcome.pages > 10_000 {
                return Err(Fault {
                    status: 200,
                    error_code: "Runaway".into(),
                    message: "more than 10,000 pages".into(),
                });
            }
        }
    }

    /// GetExtendedUpdateInfo for `ids` (at most 50, as the client batches): the
    /// fragments, and the file locations (SHA-1 base64, URL).
    pub async fn extended_info(&self, ids: &[i32]) -> Result<(Vec<(i32, String)>, Vec<(String, String)>), Fault> {
        let body = self.extended_info_body(ids);
        let r =
            self.call("/ClientWebService/client.asmx", &format!("{CLIENT_NS}/GetExtendedUpdateInfo"), &body).await?;
        let updates = descendant(&r, "Updates")
            .map(|u| {
                u.children
                    .iter()
                    .map(|x| {
                        (
                            x.child("ID").and_then(|i| i.value().parse().ok()).unwrap_or_default(),
                            x.child("Xml").map(|x| x.text.clone()).unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let files = descendant(&r, "FileLocations")
            .map(|f| {
                f.children
                    .iter()
                    .map(|l| {
                        (
                            l.child("FileDigest").map(|d| d.value().to_owned()).unwrap_or_default(),
                            l.child("Url").map(|u| u.value().to_owned()).unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok((updates, files))
    }

    /// GetExtendedUpdateInfo as the native client asks (captures/wsus-m0-native/scan/000010):
    /// Extended and LocalizedProperties, locales en-US then en, device and caller
    /// attributes, GeoId.
    pub fn extended_info_body(&self, ids: &[i32]) -> String {
        format!(
            "<GetExtendedUpdateInfo xmlns=\"{CLIENT_NS}\">{}{}<infoTypes><XmlUpdateFragmentType>Extended</XmlUpdateFragmentType><XmlUpdateFragmentType>LocalizedProperties</XmlUpdateFragmentType></infoTypes><locales><string>en-US</string><string>en</string></locales><deviceAttributes>{DEVICE_ATTRIBUTES}</deviceAttributes><GeoId>USA</GeoId><callerAttributes>Interactive=0;SheddingAware=1;Id=Sim;</callerAttributes></GetExtendedUpdateInfo>",
            self.cookie_xml("cookie"),
            ints("revisionIDs", ids)
        )
    }

    /// Downloads a file as Delivery Optimization does — Range GETs of `piece` bytes in a
    /// shuffled order — and checks its size, SHA-1 and SHA-256 against the metadata.
    pub async fn download(&self, url: &str, file: &FileMeta, piece: u64) -> Result<Vec<u8>, String> {
        use sha1::Digest as _;
        let mut starts: Vec<u64> = (0..file.size.div_ceil(piece)).map(|i| i * piece).collect();
        // A fixed shuffle: interleave from both ends.
        let mut order = Vec::with_capacity(starts.len());
        while !starts.is_empty() {
            order.push(starts.remove(starts.len() / 2));
        }
        let mut bytes = vec![0u8; file.size as usize];
        for start in order {
            let end = (start + piece).min(file.size) - 1;
            let r = self
                .http
                .get(url)
                .header("Range", format!("bytes={start}-{end}"))
                .header("User-Agent", "Microsoft-Delivery-Optimization/10.1")
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if r.status().as_u16() != 206 {
                return Err(format!("{url}: {} for bytes {start}-{end}", r.status()));
            }
            let expected_range = format!("bytes {start}-{end}/{}", file.size);
            let got_range =
                r.headers().get("content-range").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
            if got_range != expected_range {
                return Err(format!("Content-Range {got_range}, expected {expected_range}"));
            }
            let body = r.bytes().await.map_err(|e| e.to_string())?;
            bytes[start as usize..=end as usize].copy_from_slice(&body);
        }
        let b64 = |d: &[u8]| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(d)
        };
        if b64(&sha1::Sha1::digest(&bytes)) != file.sha1 {
            return Err("SHA-1 mismatch".into());
        }
        if b64(&sha2::Sha256::digest(&bytes)) != file.sha256 {
            return Err("SHA-256 mismatch".into());
        }
        Ok(bytes)
    }

    /// RefreshCache with the identities of every received revision (what a client does
    /// after ServerChanged); returns (revision id, action) of the answer.
    pub async fn refresh_cache(&self) -> Result<Vec<(i32, String)>, Fault> {
        let ids: String = self
            .received
            .values()
            .filter_map(|r| {
                let u = r.core.split("UpdateID=\"").nth(1)?.split('"').next()?;
                let n = r.core.split("RevisionNumber=\"").nth(1)?.split('"').next()?;
                Some(format!(
                    "<UpdateIdentity><UpdateID>{u}</UpdateID><RevisionNumber>{n}</RevisionNumber></UpdateIdentity>"
                ))
            })
            .collect();
        let body = format!(
            "<RefreshCache xmlns=\"{CLIENT_NS}\">{}<globalIDs>{ids}</globalIDs></RefreshCache>",
            self.cookie_xml("cookie")
        );
        let r = self.call("/ClientWebService/client.asmx", &format!("{CLIENT_NS}/RefreshCache"), &body).await?;
        Ok(r.children
            .first()
            .map(|list| {
                list.children
                    .iter()
                    .map(|e| {
                        (
                            e.child("RevisionID").and_then(|i| i.value().parse().ok()).unwrap_or_default(),
                            e.child("Deployment")
                                .and_then(|d| d.child("Action"))
                                .map(|a| a.value().to_owned())
                                .unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// GetExtendedUpdateInfo for every received leaf, in batches of 50 as the client does.
    pub async fn fetch_extended_info(&self) -> Result<usize, Fault> {
        let mut leaves: Vec<i32> = self.received.iter().filter(|(_, r)| r.is_leaf).map(|(id, _)| *id).collect();
        leaves.sort_unstable();
        let mut fragments = 0;
        for batch in leaves.chunks(50) {
            fragments += self.extended_info(batch).await?.0.len();
        }
        Ok(fragments)
    }

    /// The leaves a client installs: those approved for install, and the leaves of the
    /// bundles approved for install, through the bundles they hold (KB2267602 holds a
    /// bundle holding the engine's update). Updates sent as Bundle only because some
    /// bundle holds them are not offered for install (MS-WUSP 2.2.2.2.4, Action "Bundle").
    pub fn to_install(&self) -> Vec<i32> {
        let identity = |core: &str| {
            let attr = |name: &str| core.split(&format!("{name}=\"")).nth(1)?.split('"').next().map(str::to_owned);
            Some((attr("UpdateID")?.to_ascii_lowercase(), attr("RevisionNumber")?))
        };
        let by_identity: HashMap<(String, String), i32> =
            self.received.iter().filter_map(|(id, r)| Some((identity(&r.core)?, *id))).collect();
        let mut todo: Vec<i32> =
            self.received.iter().filter(|(_, r)| r.action == "Install").map(|(id, _)| *id).collect();
        let (mut seen, mut leaves) = (HashSet::new(), Vec::new());
        while let Some(id) = todo.pop() {
            if !seen.insert(id) {
                continue;
            }
            let r = &self.received[&id];
            if r.is_leaf {
                leaves.push(id);
            }
            let Some(bundled) =
                r.core.split("<BundledUpdates>").nth(1).and_then(|b| b.split("</BundledUpdates>").next())
            else {
                continue;
            };
            for member in bundled.split("<UpdateIdentity ").skip(1) {
                if let Some(m) = identity(member).and_then(|k| by_identity.get(&k)) {
                    todo.push(*m);
                }
            }
        }
        leaves.sort_unstable();
        leaves
    }

    /// Downloads, as Delivery Optimization does, every file of what the client installs
    /// ([`Agent::to_install`]), checking each against its digests. Returns (files, bytes).
    pub async fn download_offered(&self, piece: u64) -> Result<(usize, u64), String> {
        let leaves = self.to_install();
        let (mut files, mut bytes) = (0, 0);
        for batch in leaves.chunks(50) {
            let (fragments, locations) = self.extended_info(batch).await.map_err(|e| e.to_string())?;
            for (_, extended) in fragments.iter().filter(|(_, x)| x.starts_with("<ExtendedProperties")) {
                for meta in FileMeta::from_extended(extended) {
                    let Some((_, url)) = locations.iter().find(|(d, _)| *d == meta.sha1) else {
                        return Err(format!("no location for the file with SHA-1 {}", meta.sha1));
                    };
                    bytes += self.download(url, &meta, piece).await?.len() as u64;
                    files += 1;
                }
            }
        }
        Ok((files, bytes))
    }

    /// The events a native client sent after a scan and an install (as in the captures):
    /// 147 scan finished, 156 status (U= needed updates), then for each installed update
    /// 167 download started, 162 downloaded, 181 install started, 183 installed.
    pub async fn report_scan_and_installs(
        &self,
        needed: &[uuid::Uuid],
        installed: &[uuid::Uuid],
    ) -> Result<usize, Fault> {
        let nil = "00000000-0000-0000-0000-000000000000";
        let count = needed.len().to_string();
        let needed_list = format!("U={}", needed.iter().map(|u| u.to_string()).collect::<Vec<_>>().join(";"));
        let installed_ids: Vec<String> = installed.iter().map(|u| u.to_string()).collect();
        let mut events: Vec<(i32, &str, Vec<&str>)> =
            vec![(147, nil, vec![count.as_str()]), (156, nil, vec![needed_list.as_str()])];
        for id in &installed_ids {
            for e in [167, 162, 181, 183] {
                events.push((e, id.as_str(), Vec::new()));
            }
        }
        let refs: Vec<(i32, &str, &[&str])> = events.iter().map(|(e, u, m)| (*e, *u, m.as_slice())).collect();
        self.report(&refs, None).await.map(|(ids, _)| ids.len())
    }

    /// ReportEventBatch with events `(event id, update id or nil, data)`: `key=value`
    /// entries go to MiscData, the others to ReplacementStrings (event 147's count), as the
    /// native client writes them (captures/wsus-m0-native/flow/000016). Returns what
    /// identifies the batch (EventInstanceIDs and TimeAtTarget), which `resend` repeats as
    /// a client does when it did not hear the answer.
    pub async fn report(
        &self,
        events: &[(i32, &str, &[&str])],
        resend: Option<&(Vec<String>, String)>,
    ) -> Result<(Vec<String>, String), Fault> {
        let (body, ids, now) = self.report_body(events, resend);
        let r = self
            .call("/ReportingWebService/ReportingWebService.asmx", &format!("{REPORTING_NS}/ReportEventBatch"), &body)
            .await?;
        match descendant(&r, "ReportEventBatchResult").map(|e| e.value().to_owned()) {
            Some(v) if v == "true" => Ok((ids, now)),
            other => Err(Fault { status: 200, error_code: "NotAccepted".into(), message: format!("{other:?}") }),
        }
    }

    /// The ReportEventBatch body for `events`, with its EventInstanceIDs and time.
    pub fn report_body(
        &self,
        events: &[(i32, &str, &[&str])],
        resend: Option<&(Vec<String>, String)>,
    ) -> (String, Vec<String>, String) {
        let now = resend
            .map(|r| r.1.clone())
            .unwrap_or_else(|| chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
        let instance_ids = resend.map(|r| r.0.as_slice());
        let mut ids = Vec::new();
        let mut batch = String::new();
        let strings = |items: &[&&str]| -> String {
            items.iter().map(|m| format!("<string>{}</string>", xml_escape(m))).collect()
        };
        for (i, (event_id, update_id, data)) in events.iter().enumerate() {
            let id = instance_ids.and_then(|v| v.get(i).cloned()).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            let (mut misc, replacement): (Vec<&&str>, Vec<&&str>) = data.iter().partition(|d| d.contains('='));
            // The native client names its caller in MiscData always, and in BasicData only
            // when it is a named component, not a process (CAP flow/000016-18).
            const PROCESS: &&str = &"AppName=<<PROCESS>>: sim.exe";
            if !misc.iter().any(|m| m.starts_with("AppName=")) {
                misc.push(PROCESS);
            }
            let app_name = misc
                .iter()
                .find_map(|m| m.strip_prefix("AppName="))
                .filter(|a| !a.starts_with("<<PROCESS>>"))
                .map(|a| format!("<AppName>{}</AppName>", xml_escape(a)))
                .unwrap_or_default();
            let replacement = match replacement.as_slice() {
                [] => "<ReplacementStrings/>".to_owned(),
                r => format!("<ReplacementStrings>{}</ReplacementStrings>", strings(r)),
            };
            let misc = strings(&misc);
            // A failed install carries its error, as the native client's did (0x80246007).
            let hresult: i32 = if *event_id == 182 { 0x8024_6007_u32 as i32 } else { 0 };
            batch.push_str(&format!(
                "<ReportingEvent><BasicData><TargetID><Sid>{}</Sid></TargetID><SequenceNumber>0</SequenceNumber><TimeAtTarget>{now}</TimeAtTarget><EventInstanceID>{id}</EventInstanceID><NamespaceID>1</NamespaceID><EventID>{event_id}</EventID><SourceID>101</SourceID><UpdateID><UpdateID>{update_id}</UpdateID><RevisionNumber>0</RevisionNumber></UpdateID><Win32HResult>{hresult}</Win32HResult>{app_name}</BasicData><ExtendedData>{replacement}<MiscData>{misc}</MiscData><ComputerBrand>QEMU</ComputerBrand><ComputerModel>Standard PC</ComputerModel><BiosRevision>unknown</BiosRevision><ProcessorArchitecture>Amd64Compatible</ProcessorArchitecture><OSVersion><Major>10</Major><Minor>0</Minor><Build>26200</Build><Revision>8037</Revision><ServicePackMajor>0</ServicePackMajor><ServicePackMinor>0</ServicePackMinor></OSVersion><OSLocaleID>1033</OSLocaleID></ExtendedData><PrivateData/></ReportingEvent>",
                self.client_id
            ));
            ids.push(id);
        }
        let body = format!(
            "<ReportEventBatch xmlns=\"{REPORTING_NS}\">{}<clientTime>{now}</clientTime><eventBatch>{batch}</eventBatch></ReportEventBatch>",
            self.cookie_xml("cookie")
        );
        (body, ids, now)
    }

    /// The updates this machine evaluates and reports on: what the server sent for a
    /// status check or to install (PreDeploymentCheck, Install, OptionalInstall; not
    /// Evaluate, which is neither offered nor reported, nor bundle members, which follow
    /// their bundle: MS-WUSP 2.2.2.2.4's actions). Upper case, as the native client lists
    /// update ids in event 156.
    pub fn reportable(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .received
            .values()
            .filter(|r| r.is_leaf && matches!(r.action.as_str(), "PreDeploymentCheck" | "Install" | "OptionalInstall"))
            .filter_map(|r| r.core.split("UpdateID=\"").nth(1)?.split('"').next().map(str::to_uppercase))
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}
