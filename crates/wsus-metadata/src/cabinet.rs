//! Reading the one member of a Cabinet (MS-CAB). An upstream controls these bytes, and
//! the `cab` crate trusts them: it indexes data blocks by the offsets a file entry claims
//! and panics when a file reaches past its folder's data, or when a stored block holds
//! fewer bytes than it declares. So every offset, count and index is checked here first,
//! and whatever panic the crate may still have in it is contained: a lying cabinet is an
//! error, never a crashed process.

use std::io::Read as _;

const FLAG_PREV_CABINET: u16 = 0x0001;
const FLAG_NEXT_CABINET: u16 = 0x0002;
const FLAG_RESERVE_PRESENT: u16 = 0x0004;

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn at(bytes: &'a [u8], at: usize) -> Result<Self, String> {
        if at > bytes.len() {
            return Err(format!("offset {at} is past the end ({} bytes)", bytes.len()));
        }
        Ok(Reader { bytes, at })
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or("truncated")?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn c_string(&mut self) -> Result<(), String> {
        let rest = &self.bytes[self.at..];
        let len = rest.iter().position(|&b| b == 0).ok_or("an unterminated name")?;
        self.at += len + 1;
        Ok(())
    }
}

/// Checks that every folder's data blocks lie inside the cabinet and that every file
/// lies inside the uncompressed data of the folder it names.
pub fn check(bytes: &[u8]) -> Result<(), String> {
    let mut r = Reader::at(bytes, 0)?;
    if r.take(4)? != b"MSCF" {
        return Err("no MSCF signature".into());
    }
    r.take(12)?; // reserved1, cbCabinet, reserved2
    let files_offset = r.u32()? as usize;
    r.take(6)?; // reserved3, version
    let (folders, files, flags) = (r.u16()?, r.u16()?, r.u16()?);
    r.take(4)?; // setID, iCabinet
    let (mut folder_reserve, mut data_reserve) = (0usize, 0usize);
    if flags & FLAG_RESERVE_PRESENT != 0 {
        let header_reserve = r.u16()? as usize;
        folder_reserve = r.u8()? as usize;
        data_reserve = r.u8()? as usize;
        r.take(header_reserve)?;
    }
    for flag in [FLAG_PREV_CABINET, FLAG_NEXT_CABINET] {
        if flags & flag != 0 {
            r.c_string()?;
            r.c_string()?;
        }
    }
    // Each folder: where its data blocks start, how many, and their uncompressed total.
    let mut folder_sizes = Vec::with_capacity(folders as usize);
    for i in 0..folders {
        let start = r.u32()? as usize;
        let blocks = r.u16()?;
        let stored = r.u16()? & 0x000F == 0; // typeCompress: none
        r.take(folder_reserve)?;
        let mut data = Reader::at(bytes, start).map_err(|e| format!("folder {i}: {e}"))?;
        let mut total = 0u64;
        for b in 0..blocks {
            let inside = |e: String| format!("folder {i}, data block {b}: {e}");
            data.take(4).map_err(inside)?; // checksum
            let (compressed, uncompressed) = (data.u16().map_err(inside)?, data.u16().map_err(inside)?);
            if stored && compressed != uncompressed {
                return Err(inside(format!("stored, yet {compressed} bytes declared as {uncompressed}")));
            }
            data.take(data_reserve + compressed as usize).map_err(inside)?;
            total += u64::from(uncompressed);
        }
        folder_sizes.push(total);
    }
    let mut r = Reader::at(bytes, files_offset).map_err(|e| format!("the file list: {e}"))?;
    for i in 0..files {
        let size = u64::from(r.u32()?);
        let offset = u64::from(r.u32()?);
        let folder = r.u16()?;
        r.take(6)?; // date, time, attributes
        r.c_string()?;
        // 0xFFFD..=0xFFFF continue a file from or into another cabinet: never in a blob.
        let total = folder_sizes.get(folder as usize).ok_or_else(|| format!("file {i} names folder {folder}"))?;
        if offset + size > *total {
            return Err(format!("file {i} ({offset}+{size}) reaches past its folder's {total} bytes"));
        }
    }
    Ok(())
}

/// The bytes of the member named `blob` (any case), at most `limit` of them.
pub fn read_blob(bytes: &[u8], limit: u64) -> Result<Vec<u8>, String> {
    check(bytes).map_err(|e| format!("not a Cabinet: {e}"))?;
    let read = || -> Result<Vec<u8>, String> {
        let mut cabinet = cab::Cabinet::new(std::io::Cursor::new(bytes)).map_err(|e| format!("not a Cabinet: {e}"))?;
        let name = cabinet
            .folder_entries()
            .flat_map(|f| f.file_entries())
            .map(|f| f.name().to_owned())
            .find(|n| n.eq_ignore_ascii_case("blob"))
            .ok_or("no member named blob")?;
        let mut reader = cabinet.read_file(&name).map_err(|e| format!("cannot read blob: {e}"))?;
        let mut raw = Vec::new();
        (&mut reader).take(limit + 1).read_to_end(&mut raw).map_err(|e| format!("cannot decompress blob: {e}"))?;
        if raw.len() as u64 > limit {
            return Err(format!("blob larger than {limit} bytes"));
        }
        Ok(raw)
    };
    std::panic::catch_unwind(read).unwrap_or_else(|_| Err("a Cabinet the cab crate cannot read (malformed)".into()))
}

/// A Cabinet holding `data` as its one member `blob`, MSZIP-compressed: the form of an
/// `XmlUpdateBlobCompressed`. A real WSUS writes LZX, which no maintained encoder writes;
/// Windows reads a Cabinet through its cabinet API, which decodes MSZIP as well (FDI's
/// tcompTYPE_MSZIP), as do `expand.exe` and `cabextract`, which Microsoft's own MS-WSUSSS
/// client calls.
pub fn write_blob(data: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write as _;
    let mut builder = cab::CabinetBuilder::new();
    builder.add_folder(cab::CompressionType::MsZip).add_file("blob");
    let mut writer = builder.build(std::io::Cursor::new(Vec::new()))?;
    while let Some(mut member) = writer.next_file()? {
        member.write_all(data)?;
    }
    Ok(writer.finish()?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::check;

    /// A cabinet with one stored (uncompressed) folder of `data`, and one file `blob`
    /// claiming `offset` and `size` within it.
    fn cabinet(data: &[u8], offset: u32, size: u32) -> Vec<u8> {
        let files_offset = 36 + 8;
        let name = b"blob\0";
        let data_offset = files_offset + 16 + name.len();
        let mut c = Vec::new();
        c.extend(b"MSCF");
        c.extend(0u32.to_le_bytes());
        c.extend(((data_offset + 8 + data.len()) as u32).to_le_bytes());
        c.extend(0u32.to_le_bytes());
        c.extend((files_offset as u32).to_le_bytes());
        c.extend(0u32.to_le_bytes());
        c.extend([3, 1]);
        c.extend(1u16.to_le_bytes()); // folders
        c.extend(1u16.to_le_bytes()); // files
        c.extend(0u16.to_le_bytes()); // flags
        c.extend([0, 0, 0, 0]);
        c.extend((data_offset as u32).to_le_bytes());
        c.extend(1u16.to_le_bytes()); // data blocks
        c.extend(0u16.to_le_bytes()); // stored
        c.extend(size.to_le_bytes());
        c.extend(offset.to_le_bytes());
        c.extend(0u16.to_le_bytes()); // folder 0
        c.extend([0; 6]);
        c.extend(name);
        c.extend(0u32.to_le_bytes());
        c.extend((data.len() as u16).to_le_bytes());
        c.extend((data.len() as u16).to_le_bytes());
        c.extend(data);
        c
    }

    #[test]
    fn written_blobs_read_back() {
        let doc = "<upd:Update xmlns:upd=\"x\"/>".repeat(2000);
        let utf16: Vec<u8> = doc.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        let cabinet = super::write_blob(&utf16).unwrap();
        assert_eq!(check(&cabinet), Ok(()));
        assert!(cabinet.len() < utf16.len() / 10, "compressed: {} of {}", cabinet.len(), utf16.len());
        assert_eq!(crate::decode_cabinet(&cabinet).unwrap(), doc);
        // A folder's data is cut into 32 KiB blocks: a larger document spans several.
        let large: Vec<u8> = (0..200_000u32).flat_map(|i| ((i * 7919) as u16).to_le_bytes()).collect();
        let cabinet = super::write_blob(&large).unwrap();
        assert_eq!(super::read_blob(&cabinet, 1 << 20).unwrap(), large);
    }

    #[test]
    fn a_file_inside_its_folder_passes_and_one_reaching_past_it_does_not() {
        let doc = "<a/>".encode_utf16().flat_map(|u| u.to_le_bytes()).collect::<Vec<u8>>();
        let good = cabinet(&doc, 0, doc.len() as u32);
        assert_eq!(check(&good), Ok(()));
        assert_eq!(crate::decode_cabinet(&good).unwrap(), "<a/>", "the cab crate reads what passes");
        let past = cabinet(&doc, 2, doc.len() as u32);
        assert!(check(&past).unwrap_err().contains("reaches past"));
        assert!(crate::decode_cabinet(&past).is_err());
        assert!(check(&good[..good.len() - 1]).unwrap_err().contains("truncated"));
        // A stored block declaring more bytes than it holds (the cab crate subtracted past zero).
        let mut short = good.clone();
        let uncompressed_at = 36 + 8 + 16 + 5 + 6;
        short[uncompressed_at..uncompressed_at + 2].copy_from_slice(&((doc.len() + 4) as u16).to_le_bytes());
        assert!(check(&short).unwrap_err().contains("stored, yet"));
        assert!(check(b"MSCF").is_err());
        assert!(check(b"").is_err());
    }
}
