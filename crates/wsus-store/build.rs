fn main() {
    // The migrations are embedded at compile time.
    println!("cargo:rerun-if-changed=../../migrations");
}
