//! Driver metadata. No real driver document was found (see the reference SOURCES.md), so
//! this one follows WindowsDriver.xsd and the MS-WUSP 3.1.1.1 XPaths.

use wsus_metadata::{Update, UpdateType, fragments, pack_driver_version};

const DRIVER: &str = r#"<upd:Update xmlns:upd="http://schemas.microsoft.com/msus/2002/12/Update" xmlns:drv="http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/WindowsDriver"><upd:UpdateIdentity UpdateID="0b3f2d6e-7c1a-4e55-9a77-3c1f0e2d4b5a" RevisionNumber="1" /><upd:Properties UpdateType="Driver" DefaultPropertiesLanguage="en" PublicationState="Published" /><upd:ApplicabilityRules><upd:IsInstalled><drv:WindowsDriverInstalled /></upd:IsInstalled><upd:Metadata><drv:WindowsDriverMetaData HardwareID="PCI\VEN_8086&amp;DEV_15B8" DriverVerDate="2025-03-14" DriverVerVersion="12.19.1.37" WhqlDriverID="4711" Class="Net" Company="Contoso" Provider="Contoso" Manufacturer="Contoso" Model="Contoso Ethernet"><drv:FeatureScore OperatingSystem="AMD64.10.0" FeatureScore="254" /><drv:DistributionComputerHardwareId>4ebb5a6c-4ba3-5c3f-9b21-1d27b6dcb1f4</drv:DistributionComputerHardwareId><drv:TargetComputerHardwareId>00d34b72-0f6b-5e7b-9a86-5e8b3f6c9d21</drv:TargetComputerHardwareId></drv:WindowsDriverMetaData></upd:Metadata></upd:ApplicabilityRules></upd:Update>"#;

#[test]
fn driver_metadata_is_extracted_and_prefixed_in_core() {
    let u = Update::parse(DRIVER.to_owned()).unwrap();
    assert_eq!(u.update_type, UpdateType::Driver);
    let d = &u.drivers[0];
    assert_eq!(d.hardware_id, r"PCI\VEN_8086&DEV_15B8");
    assert_eq!(d.driver_ver_date.unwrap().to_string(), "2025-03-14");
    assert_eq!(d.driver_ver_version, pack_driver_version("12.19.1.37"));
    assert_eq!((d.class.as_deref(), d.whql_driver_id.as_deref()), (Some("Net"), Some("4711")));
    assert_eq!(d.feature_scores, vec![("AMD64.10.0".to_owned(), 254)]);
    assert_eq!(d.distribution_computer_hardware_ids.len(), 1);
    assert_eq!(d.target_computer_hardware_ids.len(), 1);

    let core = fragments::core(&u);
    assert!(core.contains("<d.WindowsDriverInstalled />"), "{core}");
    assert!(core.contains(r#"<d.WindowsDriverMetaData HardwareID="PCI\VEN_8086&amp;DEV_15B8""#), "{core}");
    assert!(!core.contains("xmlns"));
}
