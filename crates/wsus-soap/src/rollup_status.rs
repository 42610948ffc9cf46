//! RollupComputerStatus (MS-WSUSSS 3.1.4.17) read as it streams, without an element
//! tree: the one request whose size grows with a batch of computers times the updates
//! each has a status for. A batch at the announced size with thousands of statuses a
//! computer is tens of MB of XML; held as a tree it costs four times that, as statuses
//! about forty bytes each.

use chrono::{DateTime, Utc};
use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use uuid::Uuid;

use crate::envelope::SoapVersion;
use crate::read;
use crate::rollup::{ComputerStatus, UpdateStatus};
use crate::xml::{Limits, decode_text};
use crate::{DecodeError, SOAP11_NS, SOAP12_NS};

/// A RollupComputerStatus request, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComputerStatusRequest {
    pub version: SoapVersion,
    /// The namespace of the operation element (the service checks it is its own).
    pub namespace: Option<String>,
    /// Whether the (reserved) cookie is there, as the specification requires.
    pub cookie: bool,
    pub client_time: DateTime<Utc>,
    pub parent_server_id: Uuid,
    pub computers: Vec<ComputerStatus>,
}

/// What a status or computer is built from while its elements go by.
#[derive(Default)]
struct Partial {
    update_id: Option<String>,
    state: Option<String>,
    changed: Option<String>,
    instance_id: Option<String>,
    computer_id: Option<String>,
    detected: Option<String>,
    rollup_number: Option<String>,
    full: Option<String>,
    statuses: Vec<UpdateStatus>,
}

fn required(v: Option<String>, name: &str, path: &str) -> Result<String, DecodeError> {
    v.ok_or_else(|| DecodeError::new(path, format!("{name} is required")))
}

/// Reads a RollupComputerStatus envelope within `limits` (body bytes, depth, elements),
/// refusing more than `max_computers` computers (the batch size announced), DTDs and
/// entity references as the tree parser does.
// One function on purpose: one streaming state machine; the element stack and the computer being read live
// across events, and its arms read best side by side.
pub fn read_computer_status_request(
    body: &[u8],
    limits: &Limits,
    max_computers: usize,
) -> Result<ComputerStatusRequest, DecodeError> {
    let malformed = |e: String| DecodeError::new("request", e);
    if body.len() > limits.max_body_bytes {
        return Err(malformed(format!("body larger than {} bytes", limits.max_body_bytes)));
    }
    let text = decode_text(body).map_err(|e| malformed(e.to_string()))?;
    let mut reader = NsReader::from_str(&text);
    reader.config_mut().expand_empty_elements = true;
    let path = "computers";
    // Local names from the root down.
    let mut stack: Vec<String> = Vec::new();
    let mut value = String::new();
    let mut elements = 0usize;
    let (mut version, mut namespace) = (None, None);
    let (mut cookie, mut client_time, mut parent) = (false, None, None);
    let mut computers: Vec<ComputerStatus> = Vec::new();
    let mut current = Partial::default();
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(|e| malformed(e.to_string()))?;
        match event {
            Event::Start(start) => {
                elements += 1;
                if elements > limits.max_elements {
                    return Err(malformed(format!("more than {} elements", limits.max_elements)));
                }
                if stack.len() >= limits.max_depth {
                    return Err(malformed(format!("elements nest deeper than {}", limits.max_depth)));
                }
                let uri = match ns {
                    ResolveResult::Bound(n) => Some(n.as_ref().to_owned()),
                    ResolveResult::Unbound => None,
                    ResolveResult::Unknown(p) => {
                        return Err(malformed(format!("namespace prefix {:?} is not declared", p.to_string())));
                    }
                };
                let name = start.local_name().as_ref().to_owned();
                match stack.len() {
                    0 => {
                        version = match (name.as_str(), uri.as_deref()) {
                            ("Envelope", Some(SOAP11_NS)) => Some(SoapVersion::Soap11),
                            ("Envelope", Some(SOAP12_NS)) => Some(SoapVersion::Soap12),
                            _ => return Err(malformed("the root element is not a SOAP Envelope".into())),
                        }
                    }
                    2 if stack[1] == "Body" => {
                        if name != "RollupComputerStatus" {
                            return Err(malformed(format!("{name} is not RollupComputerStatus")));
                        }
                        namespace = uri;
                    }
                    _ => {}
                }
                stack.push(name);
                value.clear();
            }
            Event::End(_) => {
                let name = stack.pop().ok_or_else(|| malformed("unexpected end tag".into()))?;
                let depth = stack.len();
                let text = std::mem::take(&mut value);
                // Inside the operation: 3 = its fields, 5 = a computer's, 7 = a status's.
                let in_op = depth >= 3 && stack.get(2).is_some_and(|s| s == "RollupComputerStatus");
                if !in_op {
                    continue;
                }
                match (depth, name.as_str()) {
                    (3, "cookie") => cookie = true,
                    (3, "clientTime") => client_time = Some(read::time(&text, "clientTime")?),
                    (3, "parentServerId") => parent = Some(read::guid(&text, "parentServerId")?),
                    (5, "InstanceId") => current.instance_id = Some(text),
                    (5, "ComputerId") => current.computer_id = Some(text),
                    (5, "EffectiveLastDetectionTime") => current.detected = Some(text),
                    (5, "RollupNumber") => current.rollup_number = Some(text),
                    (5, "IsFullRollup") => current.full = Some(text),
                    (7, "UpdateId") => current.update_id = Some(text),
                    (7, "SummarizationState") => current.state = Some(text),
                    (7, "LastChangeTime") => current.changed = Some(text),
                    (6, "ComputerStatusRollupUpdateStatus") => {
                        let state: i16 = read::num(&required(current.state.take(), "SummarizationState", path)?, path)?;
                        if !(0..=6).contains(&state) {
                            return Err(DecodeError::new(path, format!("SummarizationState {state} is not 0..6")));
                        }
                        let update_id = read::guid(&required(current.update_id.take(), "UpdateId", path)?, path)?;
                        let changed = required(current.changed.take(), "LastChangeTime", path)?;
                        current.statuses.push(UpdateStatus {
                            update_id,
                            summarization_state: state,
                            last_change_time: read::time(&changed, path)?,
                        });
                    }
                    (4, "ComputerStatusRollupInfo") => {
                        if computers.len() == max_computers {
                            return Err(DecodeError::new(path, format!("more than the batch size {max_computers}")));
                        }
                        let c = std::mem::take(&mut current);
                        computers.push(computer(c, path)?);
                    }
                    _ => {}
                }
            }
            Event::Text(t) => value.push_str(&t.xml10_content()),
            Event::CData(c) => value.push_str(&c.into_inner()),
            Event::GeneralRef(r) => match r.resolve_char_ref() {
                Ok(Some(c)) => value.push(c),
                Ok(None) => match r.as_ref() {
                    "lt" => value.push('<'),
                    "gt" => value.push('>'),
                    "amp" => value.push('&'),
                    "apos" => value.push('\''),
                    "quot" => value.push('"'),
                    other => return Err(malformed(format!("entity reference &{other}; is not accepted"))),
                },
                Err(e) => return Err(malformed(e.to_string())),
            },
            Event::DocType(_) => return Err(malformed("DTDs are not accepted".into())),
            Event::Empty(_) => unreachable!("expand_empty_elements is on"),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(malformed("unexpected end of document".into()));
    }
    Ok(ComputerStatusRequest {
        version: version.ok_or_else(|| malformed("no root element".into()))?,
        namespace,
        cookie,
        client_time: client_time.ok_or_else(|| DecodeError::new("clientTime", "is required"))?,
        parent_server_id: parent.ok_or_else(|| DecodeError::new("parentServerId", "is required"))?,
        computers,
    })
}

fn computer(c: Partial, path: &str) -> Result<ComputerStatus, DecodeError> {
    let computer_id = required(c.computer_id, "ComputerId", path)?;
    if computer_id.trim().is_empty() || computer_id.len() > 256 {
        return Err(DecodeError::new(path, "ComputerId is required (at most 256 characters)"));
    }
    let is_full_rollup = match required(c.full, "IsFullRollup", path)?.trim() {
        "true" | "1" => true,
        "false" | "0" => false,
        other => return Err(DecodeError::new(path, format!("{other:?} is not a boolean"))),
    };
    Ok(ComputerStatus {
        instance_id: read::guid(&required(c.instance_id, "InstanceId", path)?, path)?,
        computer_id: computer_id.trim().to_owned(),
        effective_last_detection_time: read::optional_time(c.detected.as_deref(), path)?,
        rollup_number: read::num(&required(c.rollup_number, "RollupNumber", path)?, path)?,
        is_full_rollup,
        statuses: c.statuses,
    })
}
