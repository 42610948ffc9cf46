//! The Cabinet a locally published update's content is: its installer stored (not
//! compressed: installers are compressed already) with room in the header for an
//! Authenticode signature, then signed. The client downloads it, checks the signature,
//! unpacks it and runs the installer from it.
//!
//! A signed Cabinet's header carries a 20-byte reserve (flag `cfhdrRESERVE_PRESENT`,
//! cbCFHeader 20): 0x00100000, the signature's offset and length, 8 zero bytes. The
//! signature follows the Cabinet (cbCabinet stays the size without it), padded to a
//! multiple of 8. The digest covers every byte but those the signature changes.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use chrono::{DateTime, Datelike, Timelike, Utc};
use sha2::Digest as _;
use x509_cert::Certificate;

use crate::certificate::SigningCertificate;
use crate::{SigningError, authenticode};

/// The reserve's first four bytes; the signature's offset and length follow.
const RESERVE_MAGIC: [u8; 4] = [0, 0, 0x10, 0];
const RESERVE_LEN: usize = 20;
/// CFHEADER with the reserve: the fixed 36 bytes, 4 of reserve sizes, then the reserve.
const HEADER_LEN: u64 = 60;
/// Offsets in the header.
const CB_CABINET: usize = 8;
const FLAGS: usize = 30;
const CB_CF_HEADER: usize = 36;
const RESERVE: usize = 40;
const SIGNATURE_AT: usize = 44;
const SIGNATURE_LEN: usize = 48;
const FLAG_RESERVE_PRESENT: u16 = 0x0004;

/// Writes a Cabinet at `out` holding each `(name in the Cabinet, file on disk)`, all
/// dated `modified`, with room for a signature. Files over about 2 GiB do not fit the
/// format.
pub fn write(out: &Path, files: &[(&str, &Path)], modified: DateTime<Utc>) -> Result<(), SigningError> {
    let mut builder = cab::CabinetBuilder::new();
    builder.set_reserve_data([RESERVE_MAGIC.as_slice(), &[0u8; RESERVE_LEN - 4]].concat());
    let datetime = cab_datetime(modified)?;
    let folder = builder.add_folder(cab::CompressionType::None);
    for (name, _) in files {
        folder.add_file(*name).set_datetime(datetime);
    }
    let mut writer = builder.build(File::create(out)?)?;
    let mut sources = files.iter();
    while let Some(mut entry) = writer.next_file()? {
        let (_, path) = sources.next().ok_or_else(|| SigningError::Cabinet("more entries than files".into()))?;
        io::copy(&mut File::open(path)?, &mut entry)?;
    }
    writer.finish()?.sync_all()?;
    Ok(())
}

/// Signs the Cabinet at `path` (written by [`write`]) with `signer`.
pub fn sign(path: &Path, signer: &SigningCertificate) -> Result<(), SigningError> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let header = read_header(&mut file)?;
    let len = file.metadata()?.len();
    if header.signature.is_some() || u64::from(header.cb_cabinet) != len {
        return Err(SigningError::Cabinet("already signed".into()));
    }
    let digest = digest(&mut file, len)?;
    let mut signature = authenticode::sign(&digest, signer)?;
    signature.resize(signature.len().div_ceil(8) * 8, 0);
    let at = u32::try_from(len).map_err(|_| SigningError::Cabinet("too large to sign".into()))?;
    let size = u32::try_from(signature.len()).map_err(|_| SigningError::Cabinet("signature too large".into()))?;
    file.seek(SeekFrom::End(0))?;
    file.write_all(&signature)?;
    file.seek(SeekFrom::Start(SIGNATURE_AT as u64))?;
    file.write_all(&at.to_le_bytes())?;
    file.write_all(&size.to_le_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// Checks the Cabinet at `path` is whole and its signature holds; returns the signer's
/// certificate (whether it is trusted is the caller's question).
pub fn verify(path: &Path) -> Result<Certificate, SigningError> {
    let mut file = File::open(path)?;
    let header = read_header(&mut file)?;
    let len = file.metadata()?.len();
    let Some((at, size)) = header.signature else { return Err(SigningError::Signature("not signed".into())) };
    if u64::from(at) + u64::from(size) != len || at != header.cb_cabinet {
        return Err(SigningError::Signature("the signature is not where the header says".into()));
    }
    let digest = digest(&mut file, u64::from(at))?;
    let mut signature = vec![0u8; size as usize];
    file.seek(SeekFrom::Start(u64::from(at)))?;
    file.read_exact(&mut signature)?;
    authenticode::verify(&digest, &signature)
}

struct Header {
    cb_cabinet: u32,
    /// Offset and length of the signature, once signed.
    signature: Option<(u32, u32)>,
}

fn read_header(file: &mut File) -> Result<Header, SigningError> {
    let mut h = [0u8; HEADER_LEN as usize];
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut h).map_err(|_| SigningError::Cabinet("shorter than a Cabinet's header".into()))?;
    let u16_at = |o: usize| u16::from_le_bytes([h[o], h[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]);
    if &h[..4] != b"MSCF" {
        return Err(SigningError::Cabinet("not a Cabinet".into()));
    }
    if u16_at(FLAGS) & FLAG_RESERVE_PRESENT == 0
        || usize::from(u16_at(CB_CF_HEADER)) != RESERVE_LEN
        || h[RESERVE..RESERVE + 4] != RESERVE_MAGIC
    {
        return Err(SigningError::Cabinet("no room for a signature in its header".into()));
    }
    let (at, size) = (u32_at(SIGNATURE_AT), u32_at(SIGNATURE_LEN));
    Ok(Header { cb_cabinet: u32_at(CB_CABINET), signature: (at != 0).then_some((at, size)) })
}

/// SHA-256 of the Cabinet's first `end` bytes less the signature's place in the header:
/// bytes 0..4, 8..34, 56..60, then 60..end (osslsigncode's `cab_digest_calc`; reserved1
/// and 34..56, which hold the reserve's sizes and the signature's offset and length, are
/// left out).
fn digest(file: &mut File, end: u64) -> Result<[u8; 32], SigningError> {
    let mut h = [0u8; HEADER_LEN as usize];
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut h)?;
    let mut hasher = sha2::Sha256::new();
    hasher.update(&h[0..4]);
    hasher.update(&h[8..34]);
    hasher.update(&h[56..60]);
    let mut rest = file.take(end.saturating_sub(HEADER_LEN));
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = rest.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}

fn cab_datetime(t: DateTime<Utc>) -> Result<time::PrimitiveDateTime, SigningError> {
    let invalid = |_| SigningError::Cabinet(format!("{t} cannot be a Cabinet's date"));
    let month = time::Month::try_from(t.month() as u8).map_err(invalid)?;
    let date = time::Date::from_calendar_date(t.year(), month, t.day() as u8).map_err(invalid)?;
    let clock = time::Time::from_hms(t.hour() as u8, t.minute() as u8, t.second() as u8).map_err(invalid)?;
    Ok(time::PrimitiveDateTime::new(date, clock))
}
