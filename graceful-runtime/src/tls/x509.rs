//! The two fields of a certificate that the log names when it is loaded: its serial number and
//! its notAfter. Read straight from the DER (a few tag-length-value steps into the
//! `TBSCertificate`), so that logging them costs no X.509 parser crate.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What the log says about one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Summary {
    /// Upper-case hex, without leading zero bytes: as `openssl x509 -serial` prints it.
    pub(crate) serial: String,
    pub(crate) not_after: Time,
}

/// A UTC time of a certificate's validity, to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Time {
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

impl Time {
    /// Whether this moment has passed.
    pub(crate) fn is_past(&self) -> bool {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        self.unix_seconds() < now.as_secs()
    }

    fn unix_seconds(&self) -> u64 {
        // Days from the civil date (Howard Hinnant's algorithm), for years from 1970 on.
        let (year, month) = if self.month <= 2 {
            (u64::from(self.year) - 1, u64::from(self.month) + 9)
        } else {
            (u64::from(self.year), u64::from(self.month) - 3)
        };
        let era = year / 400;
        let year_of_era = year % 400;
        let day_of_year = (153 * month + 2) / 5 + u64::from(self.day) - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        let days = (era * 146_097 + day_of_era).saturating_sub(719_468);
        days * 86_400
            + u64::from(self.hour) * 3600
            + u64::from(self.minute) * 60
            + u64::from(self.second)
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "serial {}, notAfter {}", self.serial, self.not_after)
    }
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const EXPLICIT_VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// Reads the serial and notAfter of a DER certificate; `None` when it is not one.
///
/// `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL,
/// serialNumber INTEGER, signature AlgorithmIdentifier, issuer Name,
/// validity SEQUENCE { notBefore Time, notAfter Time }, .. }, .. }` (RFC 5280, 4.1).
pub(crate) fn summary(der: &[u8]) -> Option<Summary> {
    let (certificate, _) = expect(der, SEQUENCE)?;
    let (mut tbs, _) = expect(certificate, SEQUENCE)?;
    if tbs.first() == Some(&EXPLICIT_VERSION) {
        tbs = next(tbs)?.2;
    }
    let (serial, rest) = expect(tbs, INTEGER)?;
    let (_signature, rest) = expect(rest, SEQUENCE)?;
    let (_issuer, rest) = expect(rest, SEQUENCE)?;
    let (validity, _) = expect(rest, SEQUENCE)?;
    let (_not_before_tag, _, validity) = next(validity)?;
    let (tag, not_after, _) = next(validity)?;
    Some(Summary {
        serial: hex(serial),
        not_after: time(tag, not_after)?,
    })
}

/// One TLV whose tag must be `tag`: its contents and what follows it.
fn expect(der: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    match next(der)? {
        (found, contents, rest) if found == tag => Some((contents, rest)),
        _ => None,
    }
}

/// One TLV (single-byte tags, definite lengths: DER): its tag, contents and what follows it.
fn next(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > std::mem::size_of::<usize>() || rest.len() < count {
            return None;
        }
        let (bytes, rest) = rest.split_at(count);
        let length = bytes
            .iter()
            .fold(0usize, |length, &byte| (length << 8) | usize::from(byte));
        (length, rest)
    };
    if rest.len() < length {
        return None;
    }
    let (contents, rest) = rest.split_at(length);
    Some((tag, contents, rest))
}

fn hex(integer: &[u8]) -> String {
    let significant = match integer.iter().position(|&byte| byte != 0) {
        Some(first) => &integer[first..],
        None => &integer[integer.len().saturating_sub(1)..],
    };
    significant
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect()
}

/// `UTCTime` (`YYMMDDHHMMSSZ`, years 1950 to 2049) or `GeneralizedTime` (`YYYYMMDDHHMMSSZ`),
/// the two forms RFC 5280 allows.
fn time(tag: u8, text: &[u8]) -> Option<Time> {
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = text.get(range)?;
        part.iter().try_fold(0u32, |value, &byte| {
            byte.is_ascii_digit()
                .then(|| value * 10 + u32::from(byte - b'0'))
        })
    };
    let (year, rest) = match (tag, text.len()) {
        (UTC_TIME, 13) => {
            let short = digits(0..2)?;
            (
                if short >= 50 {
                    1900 + short
                } else {
                    2000 + short
                },
                2,
            )
        }
        (GENERALIZED_TIME, 15) => (digits(0..4)?, 4),
        _ => return None,
    };
    if text.last() != Some(&b'Z') {
        return None;
    }
    let time = Time {
        year,
        month: digits(rest..rest + 2)?,
        day: digits(rest + 2..rest + 4)?,
        hour: digits(rest + 4..rest + 6)?,
        minute: digits(rest + 6..rest + 8)?,
        second: digits(rest + 8..rest + 10)?,
    };
    let valid = (1..=12).contains(&time.month)
        && (1..=31).contains(&time.day)
        && time.hour < 24
        && time.minute < 60
        && time.second < 60;
    valid.then_some(time)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal certificate shape: version, serial, algorithm, issuer, validity.
    fn certificate(serial: &[u8], not_after: (u8, &[u8])) -> Vec<u8> {
        fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
            let mut out = vec![tag];
            if contents.len() < 0x80 {
                out.push(contents.len() as u8);
            } else {
                out.push(0x82);
                out.extend_from_slice(&(contents.len() as u16).to_be_bytes());
            }
            out.extend_from_slice(contents);
            out
        }
        let validity = [
            tlv(UTC_TIME, b"250101000000Z"),
            tlv(not_after.0, not_after.1),
        ]
        .concat();
        let tbs = [
            tlv(EXPLICIT_VERSION, &tlv(INTEGER, &[2])),
            tlv(INTEGER, serial),
            tlv(SEQUENCE, &[0x06, 0x01, 0x2a]),
            // An issuer long enough to need a long-form length.
            tlv(SEQUENCE, &[0x31; 200]),
            tlv(SEQUENCE, &validity),
        ]
        .concat();
        tlv(
            SEQUENCE,
            &[tlv(SEQUENCE, &tbs), tlv(SEQUENCE, &[])].concat(),
        )
    }

    #[test]
    fn reads_the_serial_as_openssl_prints_it_and_not_after_in_both_time_forms() {
        let der = certificate(&[0x00, 0x8f, 0x0a], (UTC_TIME, b"490630235959Z"));
        let summary = summary(&der).unwrap();
        assert_eq!(summary.serial, "8F0A");
        assert_eq!(summary.not_after.to_string(), "2049-06-30T23:59:59Z");
        assert!(!summary.not_after.is_past());

        let der = certificate(&[0x01], (GENERALIZED_TIME, b"20500101000000Z"));
        assert_eq!(summary_of(&der), "serial 01, notAfter 2050-01-01T00:00:00Z");

        let der = certificate(&[0x01], (UTC_TIME, b"991231000000Z"));
        let expired = super::summary(&der).unwrap();
        assert_eq!(expired.not_after.to_string(), "1999-12-31T00:00:00Z");
        assert!(expired.not_after.is_past());
    }

    fn summary_of(der: &[u8]) -> String {
        summary(der).unwrap().to_string()
    }

    #[test]
    fn unix_seconds_match_known_dates() {
        let at = |year, month, day| Time {
            year,
            month,
            day,
            hour: 0,
            minute: 0,
            second: 0,
        };
        assert_eq!(at(1970, 1, 1).unix_seconds(), 0);
        assert_eq!(at(2000, 3, 1).unix_seconds(), 951_868_800);
        assert_eq!(at(2038, 1, 19).unix_seconds(), 2_147_472_000);
    }

    #[test]
    fn anything_else_is_none() {
        assert_eq!(summary(b""), None);
        assert_eq!(summary(&[0x30, 0x82, 0xff]), None, "a length past the end");
        let der = certificate(&[0x01], (UTC_TIME, b"4906302359Z"));
        assert_eq!(summary(&der), None, "a time without seconds");
        let der = certificate(&[0x01], (UTC_TIME, b"491330235959Z"));
        assert_eq!(summary(&der), None, "month 13");
    }
}
