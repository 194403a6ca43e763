use std::fmt::Write as _;
use std::time::Duration;

use chrono::NaiveDate;
use clearway_gallery::{Category, Destination, DocumentKind, Endorsement, EndorsementKind};
use expect_test::{Expect, expect};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::frame::{ETX, FrameDecoder, GS, MAX_FRAME_BYTES, STX, encode_frame};
use super::*;

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("test date")
}

fn today() -> NaiveDate {
    day(2026, 3, 1)
}

/// ICAO 9303 Part 3 §4.9 check digit, written independently of the `mrz` crate.
fn icao_check(field: &str) -> char {
    let sum: u32 = field
        .chars()
        .zip([7, 3, 1].iter().cycle())
        .map(|(c, w)| {
            let v = match c {
                '0'..='9' => c as u32 - '0' as u32,
                'A'..='Z' => c as u32 - 'A' as u32 + 10,
                _ => 0,
            };
            v * w
        })
        .sum();
    char::from_digit(sum % 10, 10).expect("digit")
}

/// A TD1 MRZ built by hand, with independently computed check digits.
fn td1(code: &str, number: &str, dob: &str, expiry: &str, names: &str) -> String {
    let number = format!("{number:<<9}");
    let line1 = format!("{code}CHN{number}{}{}", icao_check(&number), "<".repeat(15));
    let body = format!(
        "{dob}{}M{expiry}{}CHN{}",
        icao_check(dob),
        icao_check(expiry),
        "<".repeat(11)
    );
    let composite = format!(
        "{}{}{}{}",
        &line1[5..30],
        &body[0..7],
        &body[8..15],
        &body[18..29]
    );
    let line2 = format!("{body}{}", icao_check(&composite));
    let line3 = format!("{names:<<30}");
    format!("{line1}\n{line2}\n{line3}")
}

/// `mrz` with the character at (0-based) `line`, `col` replaced by `c`.
fn replace(mrz: &str, line: usize, col: usize, c: char) -> String {
    let mut lines: Vec<String> = mrz.lines().map(str::to_owned).collect();
    lines[line].replace_range(col..col + 1, &c.to_string());
    lines.join("\n")
}

/// Increments the digit at `line`, `col` (so a check digit stops verifying).
fn bump(mrz: &str, line: usize, col: usize) -> String {
    let c = mrz
        .lines()
        .nth(line)
        .and_then(|l| l.chars().nth(col))
        .expect("cell");
    let d = c.to_digit(10).expect("a digit");
    replace(
        mrz,
        line,
        col,
        char::from_digit((d + 1) % 10, 10).expect("digit"),
    )
}

fn render(result: &Result<DocumentRead, DocumentError>) -> String {
    match result {
        Ok(r) => format!(
            "{} {} {} {:?} born {} valid {}..{}",
            r.kind, r.category, r.number, r.name, r.date_of_birth, r.valid_from, r.valid_until
        ),
        Err(e) => format!("error {}: {e}", e.code()),
    }
}

fn check(cases: &[(&str, String)], today: NaiveDate, expect: Expect) {
    let mut out = String::new();
    for (name, mrz) in cases {
        let _ = writeln!(out, "{name}: {}", render(&read_document(mrz, None, today)));
    }
    expect.assert_eq(&out);
}

const PASSPORT: &str =
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10";

#[test]
fn mrz_table() {
    let hk = td1("CR", "H12345678", "900501", "300430", "CHAN<<TAI<MAN");
    let cases = [
        ("home return permit, H", hk.clone()),
        ("home return permit, M", td1("CR", "M87654321", "851224", "310101", "LEONG<<KA<WAI")),
        ("home return permit, other letter", td1("CR", "K12345678", "851224", "310101", "LEONG<<KA<WAI")),
        ("home return permit, short number", td1("CR", "H1234567", "851224", "310101", "LEONG<<KA<WAI")),
        ("mainland resident permit", td1("CS", "C01234567", "920315", "320314", "LI<<XIAOMING")),
        ("taiwan resident permit", td1("CT", "01234567", "791111", "290620", "LIN<<MEI<LING")),
        ("td3 passport", PASSPORT.to_owned()),
        (
            "td2 identity card",
            "I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<\nD231458907UTO7408122F1204159<<<<<<<6".to_owned(),
        ),
        (
            "td1 identity card",
            "I<UTOD231458907<<<<<<<<<<<<<<<\n7408122F1204159UTO<<<<<<<<<<<6\nERIKSSON<<ANNA<MARIA<<<<<<<<<<".to_owned(),
        ),
        (
            "mrv-a visa",
            "V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C<3UTO6908061F9406236ZE184226B<<<<<<<".to_owned(),
        ),
        ("passport with a bad check digit", bump(PASSPORT, 1, 9)),
        ("document number check digit", bump(&hk, 0, 14)),
        ("birth date check digit", bump(&hk, 1, 6)),
        ("expiry check digit", bump(&hk, 1, 14)),
        ("composite check digit", bump(&hk, 1, 29)),
        ("document number changed", replace(&hk, 0, 6, '9')),
        ("surrounded by CR/LF and spaces", format!("\r\n  {}  \r\n", hk.replace('\n', " \r\n\t"))),
        ("lowercase", hk.to_lowercase()),
        ("accented letter", replace(&hk, 2, 0, 'É')),
        ("space inside a line", replace(&hk, 2, 4, ' ')),
        ("line too short", hk.replacen("<\n", "\n", 1)),
        ("line too long", hk.replacen("\n", "<\n", 1)),
        ("two lines of 30", hk.lines().take(2).collect::<Vec<_>>().join("\n")),
        ("one line", hk.lines().next().unwrap_or_default().to_owned()),
        ("four lines", format!("{hk}\n{}", "<".repeat(30))),
        ("empty", String::new()),
        ("expired long ago", td1("CR", "H12345678", "700101", "991231", "CHAN<<TAI<MAN")),
        ("born in the last century, 99", td1("CS", "C01234567", "991231", "300101", "LI<<MING")),
        ("born today", td1("CS", "C01234567", "260301", "360101", "LI<<MING")),
        ("born tomorrow's digits: a century ago", td1("CS", "C01234567", "260302", "360101", "LI<<MING")),
        ("expiry 50 years back", td1("CS", "C01234567", "500101", "760101", "LI<<MING")),
        ("expiry 49 years ahead", td1("CS", "C01234567", "500101", "751231", "LI<<MING")),
        ("30 february", td1("CS", "C01234567", "900230", "300101", "LI<<MING")),
        ("month 13 expiry", td1("CS", "C01234567", "900101", "301301", "LI<<MING")),
        ("minor's home return permit: 5 years", td1("CR", "M11112222", "150601", "290801", "AU<<KIT")),
        ("turned 18 just before the 10-year start", td1("CR", "M11112222", "060301", "340302", "AU<<KIT")),
        ("minor's mainland permit: 5 years", td1("CS", "C11112222", "120101", "300101", "WANG<<FANG")),
        ("adult taiwan permit: always 5 years", td1("CT", "87654321", "700101", "300101", "CHEN<<YI")),
        ("surname only", td1("CT", "87654321", "700101", "300101", "CHEN")),
        ("document number leading filler", replace(&hk, 0, 5, '<')),
    ];
    check(
        &cases,
        today(),
        expect![[r#"
            home return permit, H: mainland_travel_permit_hk_macao hong_kong_permanent_resident H12345678 "CHAN, TAI MAN" born 1990-05-01 valid 2020-05-01..2030-04-30
            home return permit, M: mainland_travel_permit_hk_macao macao_resident M87654321 "LEONG, KA WAI" born 1985-12-24 valid 2021-01-02..2031-01-01
            home return permit, other letter: error unrecognised_permit_number: unrecognised permit number: a Home Return Permit number is H or M followed by 8 digits
            home return permit, short number: error unrecognised_permit_number: unrecognised permit number: a Home Return Permit number is H or M followed by 8 digits
            mainland resident permit: permit_hk_macao mainland_resident C01234567 "LI, XIAOMING" born 1992-03-15 valid 2022-03-15..2032-03-14
            taiwan resident permit: mainland_travel_permit_taiwan taiwan_resident 01234567 "LIN, MEI LING" born 1979-11-11 valid 2024-06-21..2029-06-20
            td3 passport: error not_accepted: document code "P" is not accepted for face scan; see an officer
            td2 identity card: error not_accepted: document code "I" is not accepted for face scan; see an officer
            td1 identity card: error not_accepted: document code "I" is not accepted for face scan; see an officer
            mrv-a visa: error not_accepted: document code "V" is not accepted for face scan; see an officer
            passport with a bad check digit: error not_accepted: document code "P" is not accepted for face scan; see an officer
            document number check digit: error check_digit: check digit of document_number does not verify; present the document again
            birth date check digit: error check_digit: check digit of date_of_birth does not verify; present the document again
            expiry check digit: error check_digit: check digit of date_of_expiry does not verify; present the document again
            composite check digit: error check_digit: check digit of composite does not verify; present the document again
            document number changed: error check_digit: check digit of document_number does not verify; present the document again
            surrounded by CR/LF and spaces: mainland_travel_permit_hk_macao hong_kong_permanent_resident H12345678 "CHAN, TAI MAN" born 1990-05-01 valid 2020-05-01..2030-04-30
            lowercase: error illegal_character: illegal MRZ character 'c' at line 1, column 1
            accented letter: error illegal_character: illegal MRZ character 'É' at line 3, column 1
            space inside a line: error illegal_character: illegal MRZ character ' ' at line 3, column 5
            line too short: error line_length: MRZ line 1 has 29 characters, expected 30; present the document again
            line too long: error line_length: MRZ line 1 has 31 characters, expected 30; present the document again
            two lines of 30: error line_length: MRZ line 1 has 30 characters, expected 36; present the document again
            one line: error line_count: an MRZ has 2 or 3 lines, got 1; present the document again
            four lines: error line_count: an MRZ has 2 or 3 lines, got 4; present the document again
            empty: error line_count: an MRZ has 2 or 3 lines, got 0; present the document again
            expired long ago: mainland_travel_permit_hk_macao hong_kong_permanent_resident H12345678 "CHAN, TAI MAN" born 1970-01-01 valid 1990-01-01..1999-12-31
            born in the last century, 99: permit_hk_macao mainland_resident C01234567 "LI, MING" born 1999-12-31 valid 2020-01-02..2030-01-01
            born today: permit_hk_macao mainland_resident C01234567 "LI, MING" born 2026-03-01 valid 2031-01-02..2036-01-01
            born tomorrow's digits: a century ago: permit_hk_macao mainland_resident C01234567 "LI, MING" born 1926-03-02 valid 2026-01-02..2036-01-01
            expiry 50 years back: permit_hk_macao mainland_resident C01234567 "LI, MING" born 1950-01-01 valid 1971-01-02..1976-01-01
            expiry 49 years ahead: permit_hk_macao mainland_resident C01234567 "LI, MING" born 1950-01-01 valid 2066-01-01..2075-12-31
            30 february: error invalid_date: date_of_birth is not a calendar date
            month 13 expiry: error invalid_date: date_of_expiry is not a calendar date
            minor's home return permit: 5 years: mainland_travel_permit_hk_macao macao_resident M11112222 "AU, KIT" born 2015-06-01 valid 2024-08-02..2029-08-01
            turned 18 just before the 10-year start: mainland_travel_permit_hk_macao macao_resident M11112222 "AU, KIT" born 2006-03-01 valid 2024-03-03..2034-03-02
            minor's mainland permit: 5 years: permit_hk_macao mainland_resident C11112222 "WANG, FANG" born 2012-01-01 valid 2025-01-02..2030-01-01
            adult taiwan permit: always 5 years: mainland_travel_permit_taiwan taiwan_resident 87654321 "CHEN, YI" born 1970-01-01 valid 2025-01-02..2030-01-01
            surname only: mainland_travel_permit_taiwan taiwan_resident 87654321 "CHEN" born 1970-01-01 valid 2025-01-02..2030-01-01
            document number leading filler: error malformed: malformed MRZ: the document_number field begins with a filler
        "#]],
    );
}

#[test]
fn century_pivot_follows_today() {
    let mrz = td1("CS", "C01234567", "991231", "050101", "LI<<MING");
    let late = day(2099, 6, 1);
    let r = read_document(&mrz, None, late).expect("reads");
    assert_eq!(
        r.date_of_birth,
        day(1999, 12, 31),
        "2099-12-31 is after today"
    );
    assert_eq!(r.valid_until, day(2105, 1, 1));
    let mrz = td1("CS", "C01234567", "990101", "050101", "LI<<MING");
    let r = read_document(&mrz, None, late).expect("reads");
    assert_eq!(r.date_of_birth, day(2099, 1, 1));
}

#[test]
fn synthetic_mrz_matches_a_hand_built_one_and_reads_back() {
    let ours = synthetic_mrz(
        DocumentKind::MainlandTravelPermitHkMacao,
        "H12345678",
        "Chan, Tai Man",
        day(1990, 5, 1),
        day(2030, 4, 30),
        'M',
    );
    assert_eq!(
        ours,
        td1("CR", "H12345678", "900501", "300430", "CHAN<<TAI<MAN")
    );
    for (kind, number, category) in [
        (
            DocumentKind::MainlandTravelPermitHkMacao,
            "M00000001",
            Category::MacaoResident,
        ),
        (
            DocumentKind::PermitHkMacao,
            "C00000001",
            Category::MainlandResident,
        ),
        (
            DocumentKind::MainlandTravelPermitTaiwan,
            "00000001",
            Category::TaiwanResident,
        ),
    ] {
        let mrz = synthetic_mrz(
            kind,
            number,
            "WONG, SIU MING",
            day(1988, 2, 29),
            day(2031, 2, 28),
            'F',
        );
        let r = read_document(&mrz, None, today()).expect("synthetic MRZ reads");
        assert_eq!(
            (r.kind, r.category, r.number.as_str()),
            (kind, category, number)
        );
        assert_eq!(r.name, "WONG, SIU MING");
        assert_eq!(r.date_of_birth, day(1988, 2, 29));
        assert_eq!(r.valid_until, day(2031, 2, 28));
    }
}

fn chip_for(number: &str, dob: NaiveDate) -> ChipData {
    ChipData {
        document_number: number.to_owned(),
        date_of_birth: dob,
        issue_date: Some(day(2021, 7, 1)),
        endorsement: Some(
            Endorsement {
                kind: EndorsementKind::S,
                multiple_entry: true,
                valid_from: day(2025, 9, 1),
                valid_until: day(2026, 8, 31),
                destination: Destination::Macao,
            }
            .into(),
        ),
        endorsements: vec![],
        fingerprint_read_authorised: true,
        name_chinese: Some("李小明".to_owned()),
    }
}

#[test]
fn chip_data_merges_and_must_agree_with_the_mrz() {
    let mrz = synthetic_mrz(
        DocumentKind::PermitHkMacao,
        "C01234567",
        "LI, XIAOMING",
        day(1992, 3, 15),
        day(2031, 6, 30),
        'M',
    );
    let chip = chip_for("C01234567", day(1992, 3, 15));
    let r = read_document(&mrz, Some(&chip), today()).expect("reads");
    assert_eq!(r.valid_from, day(2021, 7, 1), "issue date from the chip");
    assert_eq!(
        r.endorsement.map(ChipEndorsement::from).as_ref(),
        chip.endorsement.as_ref()
    );
    assert!(r.fingerprint_read_authorised);
    let without = read_document(&mrz, None, today()).expect("reads");
    assert_eq!(
        (without.endorsement, without.fingerprint_read_authorised),
        (None, false)
    );
    assert_eq!(
        without.valid_from,
        day(2021, 7, 1),
        "10-year term back from expiry"
    );

    let mut other = chip.clone();
    other.document_number = "C01234568".to_owned();
    assert!(matches!(
        read_document(&mrz, Some(&other), today()),
        Err(DocumentError::ChipMismatch {
            field: MrzField::DocumentNumber
        })
    ));
    let mut other = chip.clone();
    other.date_of_birth = day(1992, 3, 16);
    assert!(matches!(
        read_document(&mrz, Some(&other), today()),
        Err(DocumentError::ChipMismatch {
            field: MrzField::DateOfBirth
        })
    ));
    let mut other = chip.clone();
    other.issue_date = Some(day(2032, 1, 1));
    assert!(matches!(
        read_document(&mrz, Some(&other), today()),
        Err(DocumentError::InvalidChip { .. })
    ));
    let mut other = chip.clone();
    if let Some(e) = other.endorsement.as_mut() {
        e.valid_until = day(2025, 1, 1);
    }
    assert!(matches!(
        read_document(&mrz, Some(&other), today()),
        Err(DocumentError::InvalidChip { .. })
    ));
    // An endorsement letter outside D/T/S/R/Q is a card the channel cannot accept: a document
    // fault the screen explains and an officer handles, never a read dropped as garbage.
    for letter in ["L", "G", "", "DD"] {
        let mut other = chip.clone();
        if let Some(e) = other.endorsement.as_mut() {
            e.kind = letter.to_owned();
        }
        let e = read_document(&mrz, Some(&other), today()).expect_err(letter);
        assert!(
            matches!(e, DocumentError::EndorsementNotAccepted),
            "{letter}: {e}"
        );
        assert!(e.is_document_fault());
        assert_eq!(e.code(), "endorsement_not_accepted");
    }
}

#[test]
fn chip_json_is_strict() {
    let json = r#"{"document_number":"C01234567","date_of_birth":"1992-03-15",
        "endorsement":{"kind":"R","multiple_entry":true,"valid_from":"2025-01-01","valid_until":"2029-12-31"}}"#;
    let chip: ChipData = serde_json::from_str(json).expect("parses");
    assert_eq!(chip.endorsement.map(|e| e.kind), Some("R".to_owned()));
    let unknown = json.replace(r#""kind":"R""#, r#""kind":"L""#);
    let chip: ChipData = serde_json::from_str(&unknown).expect("an unknown letter still parses");
    assert_eq!(chip.endorsement.map(|e| e.kind), Some("L".to_owned()));
    assert!(!chip.fingerprint_read_authorised);
    assert!(
        serde_json::from_str::<ChipData>(
            r#"{"document_number":"C1","date_of_birth":"1992-03-15","x":1}"#
        )
        .is_err()
    );
}

/// Random and mutated input never panics, and every error carries a code and a message.
#[test]
fn never_panics_on_random_or_mutated_input() {
    let mut rng = StdRng::seed_from_u64(0x00c1_ea2a);
    let good = [
        td1("CR", "H12345678", "900501", "300430", "CHAN<<TAI<MAN"),
        td1("CS", "C01234567", "920315", "320314", "LI<<XIAOMING"),
        PASSPORT.to_owned(),
    ];
    let alphabet: Vec<char> = "ABCHMPRSTZ0123456789<<<<\n\r \té中\u{0}\u{1d}"
        .chars()
        .collect();
    let mut oks = 0;
    for i in 0..20_000 {
        let text: String = if i % 4 == 0 {
            let len = rng.random_range(0..120);
            (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect()
        } else {
            let mut chars: Vec<char> = good[i % good.len()].chars().collect();
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..chars.len().max(1));
                let c = alphabet[rng.random_range(0..alphabet.len())];
                match rng.random_range(0..3) {
                    0 if at < chars.len() => chars[at] = c,
                    1 if at < chars.len() => {
                        chars.remove(at);
                    }
                    _ => chars.insert(at.min(chars.len()), c),
                }
            }
            chars.into_iter().collect()
        };
        let year = rng.random_range(1..9999);
        let today = NaiveDate::from_ymd_opt(year, 1 + rng.random_range(0..12), 1).expect("date");
        match read_document(&text, None, today) {
            Ok(_) => oks += 1,
            Err(e) => assert!(!e.code().is_empty() && !e.to_string().is_empty()),
        }
    }
    assert!(oks > 0, "some mutations (e.g. whitespace) still read");
}

#[test]
fn frame_decoder_resynchronises() {
    let doc = RawDocument {
        mrz: td1("CR", "H12345678", "900501", "300430", "CHAN<<TAI<MAN"),
        chip: Some(chip_for("H12345678", day(1990, 5, 1))),
        security: None,
    };
    let frame = encode_frame(&doc, MAX_FRAME_BYTES).expect("encodes");
    assert_eq!((frame[0], frame[frame.len() - 1]), (STX, ETX));
    assert!(frame.contains(&GS));

    let mut stream = Vec::new();
    stream.extend_from_slice(b"noise\r\n");
    stream.extend_from_slice(&frame);
    stream.extend_from_slice(b"\r\n");
    stream.extend_from_slice(&[STX, 0xff, 0xfe, ETX]); // not UTF-8
    stream.extend_from_slice(&[STX, b'A', GS, b'{', ETX]); // bad chip JSON
    stream.extend_from_slice(&[STX, b'A', b'B']); // abandoned by the next STX
    stream.extend_from_slice(&frame);
    stream.push(STX);
    stream.extend(std::iter::repeat_n(b'A', 1100)); // oversized for both limits
    stream.extend_from_slice(&frame[1..]); // its tail, ETX included: skipped
    stream.extend_from_slice(&[STX, ETX]); // empty
    stream.extend_from_slice(&encode_frame(&RawDocument::mrz_only(PASSPORT), 512).expect("fits"));

    let mut decoder = FrameDecoder::new(1024);
    let mut small = FrameDecoder::new(512);
    let mut out = String::new();
    // Byte by byte for the large decoder: frames may arrive in any fragmentation.
    for b in &stream {
        decoder.push(std::slice::from_ref(b));
    }
    small.push(&stream);
    for (name, d) in [("1024", &mut decoder), ("512", &mut small)] {
        let _ = writeln!(out, "limit {name}:");
        while let Some(item) = d.poll() {
            let line = match item {
                Ok(raw) if raw == doc => "  the document".to_owned(),
                Ok(raw) => format!("  a document: {:?}", raw.mrz.lines().next()),
                Err(e) => format!("  {}: {e}", e.code()),
            };
            let _ = writeln!(out, "{line}");
        }
    }
    expect![[r#"
        limit 1024:
          frame: garbage from the document reader: 5 bytes outside a frame skipped
          the document
          frame: garbage from the document reader: the MRZ part is not UTF-8
          frame: garbage from the document reader: chip data: EOF while parsing an object at line 1 column 1
          frame: garbage from the document reader: frame abandoned after 2 bytes by a new STX
          the document
          frame_too_large: document reader frame longer than 1024 bytes; skipped
          frame: garbage from the document reader: empty frame
          a document: Some("P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<")
        limit 512:
          frame: garbage from the document reader: 5 bytes outside a frame skipped
          the document
          frame: garbage from the document reader: the MRZ part is not UTF-8
          frame: garbage from the document reader: chip data: EOF while parsing an object at line 1 column 1
          frame: garbage from the document reader: frame abandoned after 2 bytes by a new STX
          the document
          frame_too_large: document reader frame longer than 512 bytes; skipped
          frame: garbage from the document reader: empty frame
          a document: Some("P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<")
    "#]]
    .assert_eq(&out);
}

#[test]
fn config_validates() {
    assert!(
        DocumentReaderConfig::new("127.0.0.1:4001")
            .validate()
            .is_ok()
    );
    let parsed: DocumentReaderConfig =
        toml::from_str("address = \"10.0.0.1:4001\"\nreconnect_max_ms = 1000").expect("parses");
    assert_eq!(parsed.max_frame_bytes, MAX_FRAME_BYTES);
    assert!(toml::from_str::<DocumentReaderConfig>("address = \"a:1\"\nbogus = 1").is_err());
    let mut bad = DocumentReaderConfig::new("127.0.0.1:4001");
    bad.reconnect_min_ms = 10_000;
    assert_eq!(bad.validate().map_err(|e| e.code()), Err("config"));
    bad = DocumentReaderConfig::new(" ");
    assert!(TcpDocumentReader::new(bad).is_err());
}

// --- transport, over real sockets on 127.0.0.1 ---

const WAIT: Duration = Duration::from_secs(10);

fn fast_config(addr: std::net::SocketAddr) -> DocumentReaderConfig {
    let mut config = DocumentReaderConfig::new(addr.to_string());
    config.reconnect_min_ms = 10;
    config.reconnect_max_ms = 100;
    config
}

async fn next(reader: &mut TcpDocumentReader) -> Result<RawDocument, DocumentError> {
    tokio::time::timeout(WAIT, reader.next_document())
        .await
        .expect("the reader answers within 10 s")
}

fn loopback() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 0))
}

fn card(number: &str) -> RawDocument {
    RawDocument {
        mrz: permit_mrz(number),
        chip: Some(chip_for(number, day(1992, 3, 15))),
        security: None,
    }
}

#[tokio::test]
async fn documents_round_trip_over_tcp_through_garbage_and_oversized_frames() {
    let sim = DocumentReaderSimulator::start(loopback())
        .await
        .expect("simulator");
    let mut reader = TcpDocumentReader::new(fast_config(sim.local_addr())).expect("reader");

    // Presented before the lane connects: delivered once it does.
    sim.present(card("C00000001")).expect("present");
    let got = next(&mut reader).await.expect("a document");
    assert_eq!(got, card("C00000001"));
    let read = got.read(today()).expect("reads");
    assert_eq!(read.category, Category::MainlandResident);
    assert!(reader.is_connected());

    sim.present_raw(vec![STX, 0xff, 0xfe, ETX])
        .expect("present");
    sim.present(card("C00000002")).expect("present");
    assert!(matches!(
        next(&mut reader).await,
        Err(DocumentError::Frame { .. })
    ));
    assert_eq!(
        next(&mut reader).await.expect("after garbage"),
        card("C00000002")
    );

    let mut huge = vec![STX];
    huge.extend(std::iter::repeat_n(b'<', 3 * MAX_FRAME_BYTES));
    huge.push(ETX);
    sim.present_raw(huge).expect("present");
    sim.present_raw(b"line noise".to_vec()).expect("present");
    sim.present(card("C00000003")).expect("present");
    let too_large = next(&mut reader).await;
    assert!(
        matches!(
            too_large,
            Err(DocumentError::FrameTooLarge {
                max: MAX_FRAME_BYTES
            })
        ),
        "{too_large:?}"
    );
    assert!(
        matches!(next(&mut reader).await, Err(DocumentError::Frame { .. })),
        "noise reported"
    );
    assert_eq!(
        next(&mut reader).await.expect("after oversized"),
        card("C00000003")
    );
    assert_eq!(sim.connections(), 1);
}

#[tokio::test]
async fn reader_reconnects_after_the_reader_restarts() {
    let mut sim = DocumentReaderSimulator::start(loopback())
        .await
        .expect("simulator");
    let addr = sim.local_addr();
    let mut reader = TcpDocumentReader::new(fast_config(addr)).expect("reader");
    sim.present(card("C00000001")).expect("present");
    assert_eq!(next(&mut reader).await.expect("first"), card("C00000001"));
    sim.wait_connections(1).await;
    sim.shutdown().await;

    // The link drops; while the reader is down, connecting fails and is reported.
    let lost = next(&mut reader).await;
    assert!(
        matches!(
            lost,
            Err(DocumentError::Disconnected { .. } | DocumentError::Io(_))
        ),
        "{lost:?}"
    );
    assert!(!reader.is_connected());
    assert!(matches!(
        next(&mut reader).await,
        Err(DocumentError::Connect { .. })
    ));

    let sim = DocumentReaderSimulator::start(addr)
        .await
        .expect("restarted on the same port");
    sim.present(card("C00000002")).expect("present");
    let deadline = tokio::time::Instant::now() + WAIT;
    let got = loop {
        match next(&mut reader).await {
            Ok(doc) => break doc,
            Err(DocumentError::Connect { .. }) if tokio::time::Instant::now() < deadline => {}
            Err(e) => panic!("unexpected error while reconnecting: {e}"),
        }
    };
    assert_eq!(got, card("C00000002"));
    assert_eq!(sim.connections(), 1);
}

#[tokio::test]
async fn connect_errors_are_reported_and_retried_with_backoff() {
    // A port with nobody listening: bind, note the port, close.
    let addr = {
        let l = std::net::TcpListener::bind(loopback()).expect("bind");
        l.local_addr().expect("addr")
    };
    let mut reader = TcpDocumentReader::new(fast_config(addr)).expect("reader");
    for _ in 0..3 {
        let e = next(&mut reader).await.expect_err("nobody listens");
        assert_eq!(e.code(), "connect");
        assert!(!e.is_document_fault());
    }
}

/// Seed 004: a smart-card permit carries several endorsements, one per destination; a channel
/// reads the one its port looks at (Hengqin: Macao; a Shenzhen land port: Hong Kong).
#[test]
fn the_endorsement_for_the_ports_destination_is_read() {
    let mrz = synthetic_mrz(
        DocumentKind::PermitHkMacao,
        "C01234567",
        "LI, XIAOMING",
        day(1992, 3, 15),
        day(2031, 6, 30),
        'M',
    );
    let e = |kind: &str, until: NaiveDate, destination: Option<&str>| ChipEndorsement {
        kind: kind.into(),
        multiple_entry: true,
        valid_from: day(2025, 1, 1),
        valid_until: until,
        destination: destination.map(str::to_owned),
    };
    let mut chip = chip_for("C01234567", day(1992, 3, 15));
    chip.endorsement = None;
    chip.endorsements = vec![
        e("D", day(2027, 1, 1), Some("hong_kong")),
        e("S", day(2026, 6, 1), Some("macao")),
    ];
    let read = |chip: &ChipData, d| {
        read_document_for(&mrz, Some(chip), today(), d)
            .map(|r| r.endorsement.map(|e| (e.kind, e.destination)))
    };
    assert_eq!(
        read(&chip, Some(Destination::Macao)).expect("macao"),
        Some((EndorsementKind::S, Destination::Macao))
    );
    assert_eq!(
        read(&chip, Some(Destination::HongKong)).expect("hong kong"),
        Some((EndorsementKind::D, Destination::HongKong))
    );
    assert_eq!(
        read(&chip, None).expect("any"),
        Some((EndorsementKind::D, Destination::HongKong)),
        "valid longest"
    );
    // Only a Hong Kong endorsement: Hengqin reads none (face scan then says so).
    let mut hk_only = chip.clone();
    hk_only.endorsements.truncate(1);
    assert_eq!(
        read(&hk_only, Some(Destination::Macao)).expect("none"),
        None
    );
    // An unknown letter on the other destination's endorsement does not matter here; on this
    // one it goes to an officer. An unknown destination is invalid chip data.
    let mut odd = chip.clone();
    odd.endorsements[0].kind = "L".into();
    assert!(read(&odd, Some(Destination::Macao)).is_ok());
    assert!(matches!(
        read(&odd, Some(Destination::HongKong)),
        Err(DocumentError::EndorsementNotAccepted)
    ));
    let mut nowhere = chip;
    nowhere.endorsements[1].destination = Some("taipei".into());
    assert!(matches!(
        read(&nowhere, Some(Destination::Macao)),
        Err(DocumentError::InvalidChip { .. })
    ));
}

// ------------------------------------------------------------------ passive authentication

/// One signer for the tests of this module (key generation is not free).
fn signer() -> &'static DocumentSigner {
    static SIGNER: std::sync::OnceLock<DocumentSigner> = std::sync::OnceLock::new();
    SIGNER.get_or_init(|| DocumentSigner::generate("Test issuer").expect("signer"))
}

fn trust() -> ChipTrust {
    ChipTrust::from_pem(signer().csca_pem().as_bytes()).expect("trust")
}

fn permit_mrz(number: &str) -> String {
    synthetic_mrz(
        DocumentKind::PermitHkMacao,
        number,
        "LI, XIAOMING",
        day(1992, 3, 15),
        day(2031, 6, 30),
        'M',
    )
}

/// DG13 holding `json`, as the chip would (tag 6D, an OCTET STRING).
fn dg13(json: &[u8]) -> Vec<u8> {
    let mut inner = vec![0x04, json.len() as u8];
    if json.len() >= 0x80 {
        inner = vec![0x04, 0x81, json.len() as u8];
    }
    inner.extend_from_slice(json);
    let mut out = vec![0x6D];
    if inner.len() >= 0x80 {
        out.extend([0x81, inner.len() as u8]);
    } else {
        out.push(inner.len() as u8);
    }
    out.extend(inner);
    out
}

/// Each way a chip can fail passive authentication, and the one way it passes: what
/// `read_authenticated` makes of the same permit after each change.
#[test]
fn passive_authentication_table() {
    let rogue = DocumentSigner::generate("Rogue").expect("rogue signer");
    // Signers whose own CSCA the lane trusts, but whose certificate is not a Document Signer's.
    let misissued = |usages: Vec<rcgen::KeyUsagePurpose>, ca: bool| {
        let s = DocumentSigner::generate_as("Misissued", usages, ca).expect("signer");
        let doc = RawDocument::signed(
            permit_mrz("C01234567"),
            chip_for("C01234567", day(1992, 3, 15)),
            &s,
        );
        let trust = ChipTrust::from_pem(s.csca_pem().as_bytes()).expect("csca");
        (doc.expect("signed"), trust)
    };
    let (no_usage, no_usage_trust) = misissued(Vec::new(), false);
    let (encipher, encipher_trust) =
        misissued(vec![rcgen::KeyUsagePurpose::KeyEncipherment], false);
    let (ca_signer, ca_signer_trust) =
        misissued(vec![rcgen::KeyUsagePurpose::DigitalSignature], true);
    let number = "C01234567";
    let mrz = permit_mrz(number);
    let data = chip_for(number, day(1992, 3, 15));
    let good = RawDocument::signed(mrz.clone(), data.clone(), signer()).expect("signed");
    let other = RawDocument::signed(
        permit_mrz("C07654321"),
        chip_for("C07654321", day(1992, 3, 15)),
        signer(),
    )
    .expect("signed");
    let mut forged = data.clone();
    forged.endorsement = Some(
        Endorsement {
            kind: EndorsementKind::S,
            multiple_entry: true,
            valid_from: day(2025, 9, 1),
            valid_until: day(2030, 8, 31),
            destination: Destination::Macao,
        }
        .into(),
    );
    let with = |f: &dyn Fn(&mut ChipSecurity)| {
        let mut doc = good.clone();
        f(doc.security.as_mut().expect("security"));
        doc
    };
    let cases: Vec<(&str, RawDocument, ChipTrust)> = vec![
        ("signed by a trusted issuer", good.clone(), trust()),
        ("no chip read", RawDocument::mrz_only(mrz.clone()), trust()),
        (
            "plain chip data, unsigned",
            RawDocument {
                security: None,
                ..good.clone()
            },
            trust(),
        ),
        ("no CSCA configured", good.clone(), ChipTrust::none()),
        (
            "signed by another CSCA",
            RawDocument::signed(mrz.clone(), data.clone(), &rogue).expect("rogue"),
            trust(),
        ),
        (
            "endorsement extended in DG13",
            with(&|s| s.dg13 = dg13(&serde_json::to_vec(&forged).expect("json"))),
            trust(),
        ),
        (
            "another document's chip",
            RawDocument {
                mrz: mrz.clone(),
                ..other.clone()
            },
            trust(),
        ),
        (
            "signature altered",
            with(&|s| {
                let last = s.sod.len() - 1;
                s.sod[last] ^= 0x01;
            }),
            trust(),
        ),
        (
            "security object truncated",
            with(&|s| s.sod.truncate(s.sod.len() / 2)),
            trust(),
        ),
        ("security object empty", with(&|s| s.sod.clear()), trust()),
        ("DG1 empty", with(&|s| s.dg1.clear()), trust()),
        ("DS without key usage", no_usage, no_usage_trust),
        ("DS key only for encipherment", encipher, encipher_trust),
        ("DS certificate is a CA", ca_signer, ca_signer_trust),
    ];
    let mut out = String::new();
    for (name, doc, trust) in cases {
        let verdict = match doc.read_authenticated(today(), Some(Destination::Macao), &trust) {
            Ok(r) => format!(
                "ok: {number}, endorsement until {:?}, fingerprints {}",
                r.endorsement.map(|e| e.valid_until),
                r.fingerprint_read_authorised
            ),
            Err(e) => format!("{}: {e}", e.code()),
        };
        writeln!(out, "{name:<30} {verdict}").expect("write");
    }
    expect![[r#"
        signed by a trusted issuer     ok: C01234567, endorsement until Some(2026-08-31), fingerprints true
        no chip read                   chip_not_authentic: the chip is not authentic (no signed chip was read); see an officer
        plain chip data, unsigned      chip_not_authentic: the chip is not authentic (no signed chip was read); see an officer
        no CSCA configured             chip_not_authentic: the chip is not authentic (no CSCA certificate is configured for this lane); see an officer
        signed by another CSCA         chip_not_authentic: the chip is not authentic (the Document Signer was not issued by a trusted CSCA); see an officer
        endorsement extended in DG13   chip_not_authentic: the chip is not authentic (DG13 is not an OCTET STRING under tag 6D: ASN1Error { kind: Invalid }); see an officer
        another document's chip        chip_not_authentic: the chip is not authentic (the chip's MRZ (DG1) is not the page's); see an officer
        signature altered              chip_not_authentic: the chip is not authentic (the Document Signer's signature does not verify: signature verification error); see an officer
        security object truncated      chip_not_authentic: the chip is not authentic (EF.SOD is not DER (tag 77): ASN1Error { kind: Eof }); see an officer
        security object empty          chip_not_authentic: the chip is not authentic (EF.SOD is not DER (tag 77): ASN1Error { kind: Eof }); see an officer
        DG1 empty                      chip_not_authentic: the chip is not authentic (DG1 is not the MRZ (61 / 5F1F): ASN1Error { kind: Eof }); see an officer
        DS without key usage           chip_not_authentic: the chip is not authentic (the Document Signer certificate's key usage does not allow signing); see an officer
        DS key only for encipherment   chip_not_authentic: the chip is not authentic (the Document Signer certificate's key usage does not allow signing); see an officer
        DS certificate is a CA         chip_not_authentic: the chip is not authentic (the Document Signer certificate is a CA certificate); see an officer
    "#]]
    .assert_eq(&out);
}

#[test]
fn a_signed_chip_travels_the_reader_frame_and_still_verifies() {
    let number = "C01234567";
    let doc = signed_permit(number);
    let frame = encode_frame(&doc, MAX_FRAME_BYTES).expect("fits a frame");
    let mut decoder = FrameDecoder::new(MAX_FRAME_BYTES);
    decoder.push(&frame);
    let back = decoder.poll().expect("a document").expect("decodes");
    assert_eq!(back, doc);
    let read = back
        .read_authenticated(today(), Some(Destination::Macao), &trust())
        .expect("verifies");
    assert_eq!(read.number, number);
    // A CSCA file must hold CA certificates only.
    let leaf = DemoLeaf::pem();
    let e = ChipTrust::from_pem(leaf.as_bytes()).expect_err("a leaf is no CSCA");
    assert!(e.to_string().contains("not a CA"), "{e}");
    assert!(ChipTrust::from_pem(b"no pem here").is_err());
}

/// A leaf certificate (not a CA), from the authorities' demo PKI.
struct DemoLeaf;

impl DemoLeaf {
    fn pem() -> String {
        crate::lane::authority::DemoPki::generate(&[])
            .expect("pki")
            .client_cert_pem
    }
}

/// The permit numbered `number`, its chip signed by the test issuer.
fn signed_permit(number: &str) -> RawDocument {
    RawDocument::signed(
        permit_mrz(number),
        chip_for(number, day(1992, 3, 15)),
        signer(),
    )
    .expect("signed")
}

#[test]
fn passive_authentication_never_panics_on_mutated_objects() {
    let number = "C01234567";
    let doc = signed_permit(number);
    let trust = trust();
    let mut rng = StdRng::seed_from_u64(7);
    let security = doc.security.clone().expect("security");
    let mut accepted = 0;
    for _ in 0..20_000 {
        let mut s = security.clone();
        let part = match rng.random_range(0..3) {
            0 => &mut s.sod,
            1 => &mut s.dg1,
            _ => &mut s.dg13,
        };
        for _ in 0..rng.random_range(1..4) {
            if part.is_empty() {
                break;
            }
            let i = rng.random_range(0..part.len());
            match rng.random_range(0..3) {
                0 => part[i] ^= 1 << rng.random_range(0..8),
                1 => part.truncate(i),
                _ => part.insert(i, rng.random()),
            }
        }
        // Two flips of one bit undo each other: only a changed object counts.
        if s != security && trust.verify(&s, &doc.mrz, today()).is_ok() {
            accepted += 1;
        }
    }
    // A changed byte anywhere never passes: the data groups and the content are hashed and
    // signed, and the unsigned parts are held to strict DER (`strict_certificate`, yasna's DER
    // mode), which leaves no slack to change.
    assert_eq!(accepted, 0, "a mutated chip passed passive authentication");
}

/// The reader link over mutual TLS: a device holding another CA's certificate, and a plain TCP
/// client, get no frame (the document waits for the lane); the lane with its certificate reads
/// it; a lane that does not trust the reader's CA does not read from it.
#[tokio::test]
async fn the_reader_link_over_tls_admits_only_the_device_networks_certificates() {
    use crate::lane::device_tls::{DeviceTlsConfig, LANE_ROLE, test_network};
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, lane_side) = test_network(&dir.path().join("port"), Some(LANE_ROLE));
    let (_, elsewhere) = test_network(&dir.path().join("elsewhere"), Some(LANE_ROLE));
    let sim = DocumentReaderSimulator::start_tls(loopback(), server)
        .await
        .expect("simulator");
    let config = |tls: DeviceTlsConfig| DocumentReaderConfig {
        tls: Some(tls),
        ..fast_config(sim.local_addr())
    };
    let doc = card("C01234567");
    sim.present(doc.clone()).expect("present");

    let stranger = DeviceTlsConfig {
        ca_cert: lane_side.ca_cert.clone(),
        ..elsewhere.clone()
    };
    let mut rogue = TcpDocumentReader::new(config(stranger)).expect("reader");
    assert!(next(&mut rogue).await.is_err(), "a stranger's certificate");
    let mut plain = TcpDocumentReader::new(fast_config(sim.local_addr())).expect("reader");
    let heard = tokio::time::timeout(Duration::from_secs(4), plain.next_document()).await;
    assert!(!matches!(heard, Ok(Ok(_))), "plain TCP read a document");
    assert_eq!(sim.connections(), 0, "nobody was admitted");

    let mut lane = TcpDocumentReader::new(config(lane_side.clone())).expect("reader");
    assert_eq!(next(&mut lane).await.expect("the document"), doc);
    assert_eq!(sim.connections(), 1);

    let wary = DeviceTlsConfig {
        ca_cert: elsewhere.ca_cert.clone(),
        ..lane_side
    };
    let e = next(&mut TcpDocumentReader::new(config(wary)).expect("reader"))
        .await
        .expect_err("an uncertified reader");
    assert!(e.to_string().contains("handshake"), "{e}");
}
