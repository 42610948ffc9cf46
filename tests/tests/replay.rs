//! Every request the native Windows 11 client sent a real Windows Server 2025 WSUS,
//! replayed against client-gateway (cookies, configuration time and revision ids
//! substituted): each answer must have the real answer's structure — the same element
//! names, in the same order, for every element kind; the same Deployment shape.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use sqlx::PgPool;
use wsus_e2e::agent::Agent;
use wsus_e2e::{PgCluster, System, reference};
use wsus_soap::{Element, Limits};

/// Containers that hold what depends on the catalog: present or absent with it.
const CATALOG_DEPENDENT: &[&str] = &[
    "NewUpdates",
    "OutOfScopeRevisionIDs",
    "ChangedUpdates",
    "DeployedOutOfScopeRevisionIds",
    "FileLocations",
    "Updates",
    "NewRevisions",
    "fileUrls",
];

fn parse(body: &str) -> Element {
    let limits = Limits { max_body_bytes: usize::MAX, max_depth: 64, max_elements: 50_000_000 };
    wsus_soap::parse_request(body.as_bytes(), &limits).unwrap_or_else(|e| panic!("{e}: {body}")).operation
}

/// For every element kind (`parent/name`), the names of its children in order (repeats
/// collapsed), from its first occurrence; and the kinds that only occur inside
/// catalog-dependent containers.
fn shape(root: &Element) -> (BTreeMap<String, Vec<String>>, HashSet<String>) {
    let mut kinds = BTreeMap::new();
    let mut inside = HashSet::new();
    let mut stack = vec![(root, String::new(), false)];
    while let Some((e, parent, dependent)) = stack.pop() {
        let kind = format!("{parent}/{}", e.name);
        let mut children: Vec<String> = Vec::new();
        for c in &e.children {
            if children.last() != Some(&c.name) {
                children.push(c.name.clone());
            }
        }
        kinds.entry(kind.clone()).or_insert(children);
        if dependent {
            inside.insert(kind);
        }
        for c in e.children.iter().rev() {
            stack.push((c, e.name.clone(), dependent || CATALOG_DEPENDENT.contains(&e.name.as_str())));
        }
    }
    (kinds, inside)
}

fn compare(name: &str, real: &Element, ours: &Element) {
    assert_eq!(ours.name, real.name, "{name}: answer element");
    let (real_kinds, real_inside) = shape(real);
    let (our_kinds, _) = shape(ours);
    let strip = |v: &Vec<String>| -> Vec<String> {
        v.iter().filter(|n| !CATALOG_DEPENDENT.contains(&n.as_str())).cloned().collect()
    };
    for (kind, children) in &real_kinds {
        match our_kinds.get(kind) {
            Some(ours) => assert_eq!(strip(ours), strip(children), "{name}: children of <{kind}>"),
            None => assert!(real_inside.contains(kind) || is_dependent(kind), "{name}: <{kind}> missing"),
        }
    }
    for kind in our_kinds.keys() {
        let deadline = kind.ends_with("/Deadline");
        assert!(real_kinds.contains_key(kind) || is_dependent(kind) || deadline, "{name}: unexpected <{kind}>");
    }
}

/// A kind that is, or lies inside, a catalog-dependent container.
fn is_dependent(kind: &str) -> bool {
    kind.split('/').any(|n| CATALOG_DEPENDENT.contains(&n))
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = s.find(open)? + open.len();
    Some(&s[start..start + s[start..].find(close)?])
}

/// Replaces the text of every `<tag>…</tag>`.
fn replace_all(s: &str, tag: &str, with: &str) -> String {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(&open) {
        out.push_str(&rest[..i + open.len()]);
        out.push_str(with);
        rest = &rest[i + open.len()..];
        rest = &rest[rest.find(&close).unwrap_or(0)..];
    }
    out.push_str(rest);
    out
}

/// Rewrites the revision ids inside `<tag>` arrays through `map`, dropping unknown ones.
fn map_ids(s: &str, tag: &str, map: &HashMap<i32, i32>) -> String {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let Some(start) = s.find(&open) else { return s.to_owned() };
    let end = start + s[start..].find(&close).unwrap();
    let ids: String = s[start + open.len()..end]
        .split("<int>")
        .filter_map(|p| p.split("</int>").next()?.parse::<i32>().ok())
        .filter_map(|id| map.get(&id))
        .map(|id| format!("<int>{id}</int>"))
        .collect();
    format!("{}{open}{ids}{}", &s[..start], &s[end..])
}

/// The system on a database holding the real documents of the lab server the captures
/// were recorded against.
async fn with_the_lab_documents() -> (PgCluster, System, reqwest::Client, PgPool) {
    let pg = PgCluster::start().unwrap();
    let db = pg.create_database("wsus").unwrap();
    let docs = reference("captures/wsus-m0-wsusss/docs");
    wsus_e2e::import(&db, &docs);
    let system = System::start(&db);
    let http = reqwest::Client::new();
    system.wait_ready(&http).await;
    let pool = PgPool::connect(&db).await.unwrap();
    (pg, system, http, pool)
}

#[tokio::test(flavor = "multi_thread")]
async fn native_requests_get_answers_shaped_like_the_real_servers() {
    let (_pg, system, _http, pool) = with_the_lab_documents().await;

    // A valid cookie and authorization cookie of ours, and our LastChange.
    let mut agent = Agent::new(&system.gateway_url);
    agent.handshake(true).await.unwrap();
    let config = agent
        .call("/ClientWebService/client.asmx", "http://www.microsoft.com/SoftwareDistribution/Server/ClientWebService/GetConfig",
              "<GetConfig xmlns=\"http://www.microsoft.com/SoftwareDistribution/Server/ClientWebService\"><protocolVersion>2.90</protocolVersion></GetConfig>")
        .await
        .unwrap();
    let last_change = config.children[0].child("LastChange").unwrap().value().to_owned();
    let auth = agent
        .call("/SimpleAuthWebService/SimpleAuth.asmx", "http://www.microsoft.com/SoftwareDistribution/Server/SimpleAuthWebService/GetAuthorizationCookie",
              &format!("<GetAuthorizationCookie xmlns=\"http://www.microsoft.com/SoftwareDistribution/Server/SimpleAuthWebService\"><clientId>{}</clientId><dnsName>x</dnsName></GetAuthorizationCookie>", agent.client_id))
        .await
        .unwrap();
    let cookie_data = auth.children[0].child("CookieData").unwrap().value().to_owned();

    // Lab revision id -> our revision id, through the identities in the real answers.
    let root = reference("captures/wsus-m0-native");
    let mut exchanges: Vec<PathBuf> = ["scan", "flow"]
        .iter()
        .flat_map(|run| std::fs::read_dir(root.join(run)).unwrap().flatten().map(|e| e.path()))
        .filter(|p| p.join("request.body").exists())
        .collect();
    exchanges.sort();
    let ours: Vec<(uuid::Uuid, i32, i32)> =
        sqlx::query_as("SELECT update_id, revision_number, revision_id FROM revision").fetch_all(&pool).await.unwrap();
    let mut id_map: HashMap<i32, i32> = HashMap::new();
    for ex in &exchanges {
        let body = std::fs::read_to_string(ex.join("response.body")).unwrap();
        for info in body.split("<UpdateInfo>").skip(1) {
            let (Some(id), Some(xml)) = (between(info, "<ID>", "</ID>"), between(info, "<Xml>", "</Xml>")) else {
                continue;
            };
            let update = between(xml, "UpdateID=\"", "\"").unwrap().to_lowercase();
            let rev: i32 = between(xml, "RevisionNumber=\"", "\"").unwrap().parse().unwrap();
            if let Some((_, _, mine)) = ours.iter().find(|(u, r, _)| u.to_string() == update && *r == rev) {
                id_map.insert(id.parse().unwrap(), *mine);
            }
        }
    }
    assert!(id_map.len() >= 3, "{id_map:?}");

    let mut replayed = 0;
    for ex in &exchanges {
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(ex.join("meta.json")).unwrap()).unwrap();
        let path = meta["path"].as_str().unwrap();
        let action = meta["soap_action"].as_str().unwrap().trim_matches('"').to_owned();
        let mut body = std::fs::read_to_string(ex.join("request.body")).unwrap();
        if let Some((exp, data)) = agent_cookie(&agent) {
            body = replace_all(&body, "EncryptedData", &data);
            if !body.contains("<oldCookie>") {
                body = replace_all(&body, "Expiration", &exp);
            }
        }
        body = replace_all(&body, "CookieData", &cookie_data);
        body = replace_all(&body, "lastChange", &last_change);
        for tag in ["InstalledNonLeafUpdateIDs", "OtherCachedUpdateIDs", "revisionIDs"] {
            body = map_ids(&body, tag, &id_map);
        }
        let operation = between(&body, "<s:Body><", " ").unwrap_or_default().to_owned();
        let inner = body.split("<s:Body>").nth(1).unwrap().split("</s:Body>").next().unwrap();
        let ours =
            agent.call(path, &action, inner).await.unwrap_or_else(|f| panic!("{}: {operation}: {f}", ex.display()));
        let real = parse(&std::fs::read_to_string(ex.join("response.body")).unwrap());
        compare(&format!("{} {operation}", ex.display()), &real, &ours);
        if operation == "GetCookie" {
            agent_take_cookie(&mut agent, &ours);
        }
        replayed += 1;
    }
    assert_eq!(replayed, exchanges.len());
    assert!(replayed >= 19);
}

fn agent_cookie(agent: &Agent) -> Option<(String, String)> {
    agent.cookie()
}

fn agent_take_cookie(agent: &mut Agent, response: &Element) {
    agent.adopt_cookie(response);
}

/// Every request a real WSUS downstream server sent a real WSUS upstream, replayed in
/// order against client-gateway (the cookies it issues substituted): each answer has the
/// real answer's structure and element order (documents compressed where WSUS compressed
/// them), the faults included, and the revisions the real upstream named that this
/// catalog holds.
// One function on purpose: one scenario read top to bottom, each step using the state
// the steps before it left; split, the steps would lose what they build on.
#[tokio::test(flavor = "multi_thread")]
async fn downstream_server_requests_get_answers_shaped_like_a_real_upstream() {
    let (_pg, system, http, pool) = with_the_lab_documents().await;
    let held: HashSet<(String, String)> =
        sqlx::query_as::<_, (uuid::Uuid, i32)>("SELECT update_id, revision_number FROM revision")
            .fetch_all(&pool)
            .await
            .unwrap()
            .into_iter()
            .map(|(u, r)| (u.to_string(), r.to_string()))
            .collect();

    let root = reference("captures/wsus-m0-wsusss/exchanges");
    let mut exchanges: Vec<PathBuf> =
        std::fs::read_dir(&root).unwrap().flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    exchanges.sort();
    let (mut cookie_data, mut encrypted, mut expiration) = (None::<String>, None::<String>, None::<String>);
    for ex in &exchanges {
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(ex.join("meta.json")).unwrap()).unwrap();
        let path = meta["path"].as_str().unwrap();
        let action = meta["soap_action"].as_str().unwrap();
        let mut body = std::fs::read_to_string(ex.join("request.body")).unwrap();
        if let Some(c) = &cookie_data {
            body = replace_all(&body, "CookieData", c);
        }
        if let (Some(data), Some(exp)) = (&encrypted, &expiration) {
            body = replace_all(&body, "EncryptedData", data);
            body = replace_all(&body, "Expiration", exp);
        }
        let response = http
            .post(format!("{}{path}", system.gateway_url))
            .header("Content-Type", "text/xml; charset=utf-8")
            .header("SOAPAction", format!("\"{action}\""))
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let name = ex.display().to_string();
        assert_eq!(status, meta["status"].as_u64().unwrap() as u16, "{name}: {text}");
        let ours = parse(&text);
        let real_text = std::fs::read_to_string(ex.join("response.body")).unwrap();
        let real = parse(&real_text);
        compare(&name, &real, &ours);
        if status == 500 {
            let (ours, real) = (ours.child("faultactor").unwrap().value(), real.child("faultactor").unwrap().value());
            assert_eq!(
                ours.split_once("//").unwrap().1.split_once('/').unwrap().1,
                real.split_once("//").unwrap().1.split_once('/').unwrap().1
            );
            continue;
        }
        let result = &ours.children[0];
        match ours.name.as_str() {
            "GetAuthorizationCookieResponse" => {
                cookie_data = Some(result.child("CookieData").unwrap().value().to_owned())
            }
            "GetCookieResponse" => {
                encrypted = Some(result.child("EncryptedData").unwrap().value().to_owned());
                expiration = Some(result.child("Expiration").unwrap().value().to_owned());
            }
            "GetRevisionIdListResponse" => {
                // What the real upstream listed and this catalog holds, this one lists too.
                let listed = |text: &str| -> HashSet<(String, String)> {
                    text.split("<UpdateID>")
                        .skip(1)
                        .filter_map(|s| {
                            let (id, rest) = s.split_once("</UpdateID><RevisionNumber>")?;
                            Some((id.to_owned(), rest.split('<').next()?.to_owned()))
                        })
                        .collect()
                };
                let ours = listed(&text);
                let expected: HashSet<_> = listed(&real_text).intersection(&held).cloned().collect();
                let missing: Vec<_> = expected.difference(&ours).collect();
                assert!(missing.is_empty(), "{name}: {missing:?} missing from {text}");
            }
            "GetUpdateDataResponse" => {
                // The document is the imported one, byte for byte.
                let data = &result.child("updates").unwrap().children[0];
                let id = data.child("Id").unwrap();
                let file = reference("captures/wsus-m0-wsusss/docs").join(format!(
                    "{}-r{}.xml",
                    id.child("UpdateID").unwrap().value(),
                    id.child("RevisionNumber").unwrap().value()
                ));
                let imported = std::fs::read_to_string(file).unwrap();
                // Plain, or compressed where the real upstream compressed it.
                let sent = match data.child("XmlUpdateBlobCompressed") {
                    Some(c) => wsus_metadata::decode_compressed_blob(c.value()).unwrap(),
                    None => data.child("XmlUpdateBlob").unwrap().value().to_owned(),
                };
                let real_form = |e: &Element| {
                    e.child("GetUpdateDataResult")
                        .and_then(|r| r.child("updates"))
                        .and_then(|u| u.children.first())
                        .map(|d| d.child("XmlUpdateBlobCompressed").is_some())
                };
                assert_eq!(real_form(&ours), real_form(&real), "{name}: compressed as the real upstream did");
                assert_eq!(sent.trim(), imported.trim(), "{name}");
            }
            _ => {}
        }
    }
    assert_eq!(exchanges.len(), 19);

    // Beyond the recording: Ping, and DownloadFiles for a digest this catalog lacks.
    let post = |op: &'static str, action: String, body: String| {
        let http = http.clone();
        let url = format!("{}/ServerSyncWebService/ServerSyncWebService.asmx", system.gateway_url);
        async move {
            let r = http
                .post(url)
                .header("Content-Type", "text/xml; charset=utf-8")
                .header("SOAPAction", action)
                .body(wsus_soap::wsusss::dss::envelope(&body))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap(), op)
        }
    };
    let (status, text, _) = post(
        "Ping",
        "\"http://www.microsoft.com/SoftwareDistribution/Server/IMonitorable/Ping\"".into(),
        "<Ping xmlns=\"http://www.microsoft.com/SoftwareDistribution/Server/IMonitorable\"><pingLevel>1</pingLevel></Ping>".into(),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("<SuccessFlag>true</SuccessFlag>"), "{text}");
    let cookie = wsus_soap::wusp::Cookie {
        expiration: chrono::DateTime::parse_from_rfc3339(&expiration.unwrap()).unwrap().into(),
        encrypted_data: encrypted,
    };
    let unknown = "AAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_owned();
    let (status, text, _) = post(
        "DownloadFiles",
        wsus_soap::wsusss::dss::action("DownloadFiles"),
        wsus_soap::wsusss::dss::download_files(&cookie, std::slice::from_ref(&unknown)),
    )
    .await;
    assert_eq!(status, 500);
    let fault = parse(&text);
    let detail = fault.child("detail").unwrap();
    assert_eq!(detail.child("ErrorCode").unwrap().value(), "FileDigestsMissing");
    assert_eq!(detail.child("Message").unwrap().value(), unknown);
}
