//! libpq's password file (`~/.pgpass`, or the file `PGPASSFILE` names): lines of
//! `host:port:database:user:password`, `*` matching anything, `\:` and `\\` escaped. As
//! libpq does, a file that others can read is ignored. (Written here: five fields per line,
//! no crate needed.)

use std::path::PathBuf;

/// The password file's path, if any.
fn path() -> Option<PathBuf> {
    match std::env::var_os("PGPASSFILE") {
        Some(p) => Some(PathBuf::from(p)),
        None => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pgpass")),
    }
}

/// The password for this connection from the password file, if a line matches.
pub fn lookup(host: &str, port: u16, db: &str, user: &str) -> Option<String> {
    let path = path()?;
    let meta = std::fs::metadata(&path).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                "{}: readable by others, ignored (chmod 600 it)",
                path.display()
            );
            return None;
        }
    }
    if meta.len() > 1 << 20 {
        return None;
    }
    let text = std::fs::read_to_string(&path).ok()?;
    find(&text, [host, &port.to_string(), db, user])
}

/// The password of the first line whose four fields match `wanted`.
fn find(text: &str, wanted: [&str; 4]) -> Option<String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(fields)
        .find(|f| f.len() == 5 && (0..4).all(|i| f[i] == "*" || f[i] == wanted[i]))
        .map(|mut f| f.remove(4))
}

/// A line split on unescaped `:`, with `\:` and `\\` unescaped.
fn fields(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.last_mut().unwrap().extend(chars.next()),
            ':' if out.len() < 5 => out.push(String::new()),
            c => out.last_mut().unwrap().push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_matching_line_wins_with_wildcards_and_escapes() {
        let text =
            "# comment\nother:5432:*:ann:nope\n127.0.0.1:*:shop:ann:p\\:w\\\\d\n*:*:*:*:any\n";
        assert_eq!(
            find(text, ["127.0.0.1", "5432", "shop", "ann"]).as_deref(),
            Some("p:w\\d")
        );
        assert_eq!(
            find(text, ["db", "5432", "shop", "bob"]).as_deref(),
            Some("any")
        );
        assert_eq!(find("h:1:d:u\n", ["h", "1", "d", "u"]), None);
    }
}
