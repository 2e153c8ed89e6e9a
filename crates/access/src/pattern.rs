//! Stream-key patterns: `*` matches any run of characters (also none), `?` exactly one;
//! everything else matches itself.

/// Whether `text` matches `pattern` as a whole.
pub(crate) fn matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative wildcard matching with one backtrack point: linear in practice, never recursive.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn literal_star_and_question_mark() {
        assert!(matches("live", "live"));
        assert!(!matches("live", "live2"));
        assert!(matches("*", ""));
        assert!(matches("*", "anything"));
        assert!(matches("cam-*", "cam-12"));
        assert!(!matches("cam-*", "xcam-12"));
        assert!(matches("*-hd", "news-hd"));
        assert!(matches("a*b*c", "aXXbYYc"));
        assert!(!matches("a*b*c", "aXXbYY"));
        assert!(matches("cam?", "cam1"));
        assert!(!matches("cam?", "cam12"));
        assert!(matches("**", "x"));
    }
}
