//! The words of the lab's own small command lines (`attach-node-lab`,
//! `attach-node-fleet`): UTF-8 only, each flag's value either the next word
//! (`--flag value`) or inline (`--flag=value`).

use std::ffi::OsString;

pub struct Argv(std::vec::IntoIter<String>);

impl Argv {
    pub fn new(args: Vec<OsString>) -> Result<Argv, String> {
        let words = args
            .into_iter()
            .map(|a| {
                a.into_string()
                    .map_err(|a| format!("argument is not UTF-8: {}", a.to_string_lossy()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Argv(words.into_iter()))
    }

    /// The next word as it is (a subcommand, or a flag's value).
    pub fn word(&mut self) -> Option<String> {
        self.0.next()
    }

    /// The next flag, with its value when it was given inline.
    pub fn flag(&mut self) -> Option<Flag> {
        let word = self.0.next()?;
        Some(match word.split_once('=') {
            Some((name, v)) if name.starts_with("--") => Flag {
                name: name.to_owned(),
                inline: Some(v.to_owned()),
            },
            _ => Flag {
                name: word,
                inline: None,
            },
        })
    }
}

pub struct Flag {
    pub name: String,
    inline: Option<String>,
}

impl Flag {
    /// The flag's value: the inline one, or else the next word.
    pub fn value(&self, argv: &mut Argv) -> Result<String, String> {
        match &self.inline {
            Some(v) => Ok(v.clone()),
            None => argv
                .word()
                .ok_or_else(|| format!("{} needs a value", self.name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_and_a_missing_value() {
        let mut a = Argv::new(["--a", "1", "--b=2", "--c"].map(OsString::from).to_vec()).unwrap();
        let f = a.flag().unwrap();
        assert_eq!(
            (f.name.as_str(), f.value(&mut a).unwrap()),
            ("--a", "1".into())
        );
        let f = a.flag().unwrap();
        assert_eq!(
            (f.name.as_str(), f.value(&mut a).unwrap()),
            ("--b", "2".into())
        );
        let f = a.flag().unwrap();
        assert_eq!(f.value(&mut a).unwrap_err(), "--c needs a value");
        assert!(a.flag().is_none());
    }
}
