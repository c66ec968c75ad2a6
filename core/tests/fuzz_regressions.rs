//! Inputs the fuzz targets failed on, each kept as a plain test of the same check
//! (`fuzz_checks`), with what it found.

mod fuzz_checks;
mod parser_util;

/// `http1_decoder`: a head over the 64 KiB limit whose fault lies past the limit. Arriving in
/// pieces, it fails as too large once 64 KiB have come without a blank line; whole, `httparse`
/// fails it as malformed. Both are errors, and the check must accept either.
#[test]
fn head_over_the_limit_with_a_fault_past_it() {
    let mut raw = b"HTTP/1.1 200 OK\r\nx-pad: ".to_vec();
    raw.resize(70 * 1024, b'p');
    raw.extend_from_slice(b"\r\nContent-Type\x38\xff-sid\r\n\r\ndata: x\n\n");
    let whole = fuzz_checks::read_response(&[&raw]);
    assert!(whole.error.unwrap().contains("malformed"));
    let cut = fuzz_checks::read_response(&[&raw[..66 * 1024], &raw[66 * 1024..]]);
    assert!(cut.error.unwrap().contains("larger than 64 KiB"));
    // A byte a chunk (flags 0x20).
    let input = [&[0x20, 0][..], &raw].concat();
    fuzz_checks::http1_decoder(&input);
}

/// `http1_decoder`: leading blank lines, then garbage. Whole, the head fails as malformed; a
/// byte at a time, the transport parses it only at a blank line, and none comes after the
/// first two bytes, so it waits (until 64 KiB or the end of the connection, both errors).
#[test]
fn garbage_after_leading_blank_lines() {
    let raw = b"\n\n\rc\x93aache.\n\r\x10\x00\xf9\x001ra";
    let whole = fuzz_checks::read_response(&[raw]);
    assert!(whole.error.unwrap().contains("malformed"));
    // The input as found (flags 0x29: a byte a chunk).
    fuzz_checks::http1_decoder(b")d\n\n\rc\x93aache.\n\r\x10\x00\xf9\x001ra");
}
