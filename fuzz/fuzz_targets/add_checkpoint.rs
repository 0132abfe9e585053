#![no_main]

#[path = "../witness_checks.rs"]
mod witness_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    witness_checks::add_checkpoint(data);
});
