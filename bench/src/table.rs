//! The results table every benchmark adds its lines to.

/// One line of the results table.
pub struct Row {
    pub what: String,
    pub result: String,
    pub target: String,
    pub met: Option<bool>,
}

pub fn row(what: impl Into<String>, result: impl Into<String>, target: impl Into<String>, met: Option<bool>) -> Row {
    Row { what: what.into(), result: result.into(), target: target.into(), met }
}

/// The table as markdown.
pub fn print(rows: &[Row]) {
    println!("| benchmark | measured | target | met |");
    println!("| --- | --- | --- | --- |");
    for r in rows {
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "",
        };
        println!("| {} | {} | {} | {met} |", r.what, r.result, r.target);
    }
}
