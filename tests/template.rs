//! URI Template matching: RFC 6570's own examples read backwards, near misses, Mercure's
//! selectors, parse errors, and a property test that expands random templates with random
//! values (with a reference expander written from the RFC's appendix A) and matches the
//! results. Matching in linear time is the `regex` crate's guarantee (no backtracking), not
//! something a test could time here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use ssecast::{TemplateError, UriTemplate};

#[track_caller]
fn check(template: &str, candidate: &str, expected: bool) {
    let compiled =
        UriTemplate::parse(template).unwrap_or_else(|e| panic!("{template:?} does not parse: {e}"));
    assert_eq!(
        compiled.matches(candidate),
        expected,
        "{template:?} against {candidate:?}"
    );
}

#[track_caller]
fn check_error(template: &str, expected: TemplateError) {
    assert_eq!(
        UriTemplate::parse(template).err(),
        Some(expected),
        "{template:?}"
    );
}

/// Every example expansion of RFC 6570 sections 1.2, 2.4 and 3.2, with the variables of those
/// sections:
///
/// ```text
/// count := ("one", "two", "three")    dom := ("example", "com")     dub := "me/too"
/// hello := "Hello World!"             half := "50%"                 var := "value"
/// who := "fred"                       base := "http://example.com/home/"
/// path := "/foo/bar"                  list := ("red", "green", "blue")
/// keys := [("semi",";"),("dot","."),("comma",",")]                  v := "6"
/// x := "1024"   y := "768"   empty := ""   empty_keys := []   undef := null
/// semi := ";"   year := ("1965", "2000", "2012")
/// address := [("city", "Newport Beach"), ("state", "CA")]
/// ```
const RFC_EXAMPLES: &[(&str, &str)] = &[
    // 1.2, level 1
    ("{var}", "value"),
    ("{hello}", "Hello%20World%21"),
    // 1.2, level 2
    ("{+var}", "value"),
    ("{+hello}", "Hello%20World!"),
    ("{+path}/here", "/foo/bar/here"),
    ("here?ref={+path}", "here?ref=/foo/bar"),
    ("X{#var}", "X#value"),
    ("X{#hello}", "X#Hello%20World!"),
    // 1.2, level 3
    ("map?{x,y}", "map?1024,768"),
    ("{x,hello,y}", "1024,Hello%20World%21,768"),
    ("{+x,hello,y}", "1024,Hello%20World!,768"),
    ("{+path,x}/here", "/foo/bar,1024/here"),
    ("{#x,hello,y}", "#1024,Hello%20World!,768"),
    ("{#path,x}/here", "#/foo/bar,1024/here"),
    ("X{.var}", "X.value"),
    ("X{.x,y}", "X.1024.768"),
    ("{/var}", "/value"),
    ("{/var,x}/here", "/value/1024/here"),
    ("{;x,y}", ";x=1024;y=768"),
    ("{;x,y,empty}", ";x=1024;y=768;empty"),
    ("{?x,y}", "?x=1024&y=768"),
    ("{?x,y,empty}", "?x=1024&y=768&empty="),
    ("?fixed=yes{&x}", "?fixed=yes&x=1024"),
    ("{&x,y,empty}", "&x=1024&y=768&empty="),
    // 1.2, level 4
    ("{var:3}", "val"),
    ("{var:30}", "value"),
    ("{list}", "red,green,blue"),
    ("{list*}", "red,green,blue"),
    ("{keys}", "semi,%3B,dot,.,comma,%2C"),
    ("{keys*}", "semi=%3B,dot=.,comma=%2C"),
    ("{+path:6}/here", "/foo/b/here"),
    ("{+list}", "red,green,blue"),
    ("{+list*}", "red,green,blue"),
    ("{+keys}", "semi,;,dot,.,comma,,"),
    ("{+keys*}", "semi=;,dot=.,comma=,"),
    ("{#path:6}/here", "#/foo/b/here"),
    ("{#list}", "#red,green,blue"),
    ("{#list*}", "#red,green,blue"),
    ("{#keys}", "#semi,;,dot,.,comma,,"),
    ("{#keys*}", "#semi=;,dot=.,comma=,"),
    ("X{.var:3}", "X.val"),
    ("X{.list}", "X.red,green,blue"),
    ("X{.list*}", "X.red.green.blue"),
    ("X{.keys}", "X.semi,%3B,dot,.,comma,%2C"),
    ("X{.keys*}", "X.semi=%3B.dot=..comma=%2C"),
    ("{/var:1,var}", "/v/value"),
    ("{/list}", "/red,green,blue"),
    ("{/list*}", "/red/green/blue"),
    ("{/list*,path:4}", "/red/green/blue/%2Ffoo"),
    ("{/keys}", "/semi,%3B,dot,.,comma,%2C"),
    ("{/keys*}", "/semi=%3B/dot=./comma=%2C"),
    ("{;hello:5}", ";hello=Hello"),
    ("{;list}", ";list=red,green,blue"),
    ("{;list*}", ";list=red;list=green;list=blue"),
    ("{;keys}", ";keys=semi,%3B,dot,.,comma,%2C"),
    ("{;keys*}", ";semi=%3B;dot=.;comma=%2C"),
    ("{?var:3}", "?var=val"),
    ("{?list}", "?list=red,green,blue"),
    ("{?list*}", "?list=red&list=green&list=blue"),
    ("{?keys}", "?keys=semi,%3B,dot,.,comma,%2C"),
    ("{?keys*}", "?semi=%3B&dot=.&comma=%2C"),
    ("{&var:3}", "&var=val"),
    ("{&list}", "&list=red,green,blue"),
    ("{&list*}", "&list=red&list=green&list=blue"),
    ("{&keys}", "&keys=semi,%3B,dot,.,comma,%2C"),
    ("{&keys*}", "&semi=%3B&dot=.&comma=%2C"),
    // 2.4.1, prefix values
    ("{var}", "value"),
    ("{var:20}", "value"),
    ("{var:3}", "val"),
    ("{semi}", "%3B"),
    ("{semi:2}", "%3B"),
    // 2.4.2, composite values
    ("find{?year*}", "find?year=1965&year=2000&year=2012"),
    ("www{.dom*}", "www.example.com"),
    (
        "/mapper{?address*}",
        "/mapper?city=Newport%20Beach&state=CA",
    ),
    // 3.2.1, variable expansion
    ("{count}", "one,two,three"),
    ("{count*}", "one,two,three"),
    ("{/count}", "/one,two,three"),
    ("{/count*}", "/one/two/three"),
    ("{;count}", ";count=one,two,three"),
    ("{;count*}", ";count=one;count=two;count=three"),
    ("{?count}", "?count=one,two,three"),
    ("{?count*}", "?count=one&count=two&count=three"),
    ("{&count*}", "&count=one&count=two&count=three"),
    // 3.2.2, simple string expansion
    ("{var}", "value"),
    ("{hello}", "Hello%20World%21"),
    ("{half}", "50%25"),
    ("O{empty}X", "OX"),
    ("O{undef}X", "OX"),
    ("{x,y}", "1024,768"),
    ("{x,hello,y}", "1024,Hello%20World%21,768"),
    ("?{x,empty}", "?1024,"),
    ("?{x,undef}", "?1024"),
    ("?{undef,y}", "?768"),
    ("{var:3}", "val"),
    ("{var:30}", "value"),
    ("{list}", "red,green,blue"),
    ("{list*}", "red,green,blue"),
    ("{keys}", "semi,%3B,dot,.,comma,%2C"),
    ("{keys*}", "semi=%3B,dot=.,comma=%2C"),
    // 3.2.3, reserved expansion
    ("{+var}", "value"),
    ("{+hello}", "Hello%20World!"),
    ("{+half}", "50%25"),
    ("{base}index", "http%3A%2F%2Fexample.com%2Fhome%2Findex"),
    ("{+base}index", "http://example.com/home/index"),
    ("O{+empty}X", "OX"),
    ("O{+undef}X", "OX"),
    ("{+path}/here", "/foo/bar/here"),
    ("here?ref={+path}", "here?ref=/foo/bar"),
    ("up{+path}{var}/here", "up/foo/barvalue/here"),
    ("{+x,hello,y}", "1024,Hello%20World!,768"),
    ("{+path,x}/here", "/foo/bar,1024/here"),
    ("{+path:6}/here", "/foo/b/here"),
    ("{+list}", "red,green,blue"),
    ("{+list*}", "red,green,blue"),
    ("{+keys}", "semi,;,dot,.,comma,,"),
    ("{+keys*}", "semi=;,dot=.,comma=,"),
    // 3.2.4, fragment expansion
    ("{#var}", "#value"),
    ("{#hello}", "#Hello%20World!"),
    ("{#half}", "#50%25"),
    ("foo{#empty}", "foo#"),
    ("foo{#undef}", "foo"),
    ("{#x,hello,y}", "#1024,Hello%20World!,768"),
    ("{#path,x}/here", "#/foo/bar,1024/here"),
    ("{#path:6}/here", "#/foo/b/here"),
    ("{#list}", "#red,green,blue"),
    ("{#list*}", "#red,green,blue"),
    ("{#keys}", "#semi,;,dot,.,comma,,"),
    ("{#keys*}", "#semi=;,dot=.,comma=,"),
    // 3.2.5, label expansion
    ("{.who}", ".fred"),
    ("{.who,who}", ".fred.fred"),
    ("{.half,who}", ".50%25.fred"),
    ("www{.dom*}", "www.example.com"),
    ("X{.var}", "X.value"),
    ("X{.empty}", "X."),
    ("X{.undef}", "X"),
    ("X{.var:3}", "X.val"),
    ("X{.list}", "X.red,green,blue"),
    ("X{.list*}", "X.red.green.blue"),
    ("X{.keys}", "X.semi,%3B,dot,.,comma,%2C"),
    ("X{.keys*}", "X.semi=%3B.dot=..comma=%2C"),
    ("X{.empty_keys}", "X"),
    ("X{.empty_keys*}", "X"),
    // 3.2.6, path segment expansion
    ("{/who}", "/fred"),
    ("{/who,who}", "/fred/fred"),
    ("{/half,who}", "/50%25/fred"),
    ("{/who,dub}", "/fred/me%2Ftoo"),
    ("{/var}", "/value"),
    ("{/var,empty}", "/value/"),
    ("{/var,undef}", "/value"),
    ("{/var,x}/here", "/value/1024/here"),
    ("{/var:1,var}", "/v/value"),
    ("{/list}", "/red,green,blue"),
    ("{/list*}", "/red/green/blue"),
    ("{/list*,path:4}", "/red/green/blue/%2Ffoo"),
    ("{/keys}", "/semi,%3B,dot,.,comma,%2C"),
    ("{/keys*}", "/semi=%3B/dot=./comma=%2C"),
    // 3.2.7, path-style parameter expansion
    ("{;who}", ";who=fred"),
    ("{;half}", ";half=50%25"),
    ("{;empty}", ";empty"),
    ("{;v,empty,who}", ";v=6;empty;who=fred"),
    ("{;v,bar,who}", ";v=6;who=fred"),
    ("{;x,y}", ";x=1024;y=768"),
    ("{;x,y,empty}", ";x=1024;y=768;empty"),
    ("{;x,y,undef}", ";x=1024;y=768"),
    ("{;hello:5}", ";hello=Hello"),
    ("{;list}", ";list=red,green,blue"),
    ("{;list*}", ";list=red;list=green;list=blue"),
    ("{;keys}", ";keys=semi,%3B,dot,.,comma,%2C"),
    ("{;keys*}", ";semi=%3B;dot=.;comma=%2C"),
    // 3.2.8, form-style query expansion
    ("{?who}", "?who=fred"),
    ("{?half}", "?half=50%25"),
    ("{?x,y}", "?x=1024&y=768"),
    ("{?x,y,empty}", "?x=1024&y=768&empty="),
    ("{?x,y,undef}", "?x=1024&y=768"),
    ("{?var:3}", "?var=val"),
    ("{?list}", "?list=red,green,blue"),
    ("{?list*}", "?list=red&list=green&list=blue"),
    ("{?keys}", "?keys=semi,%3B,dot,.,comma,%2C"),
    ("{?keys*}", "?semi=%3B&dot=.&comma=%2C"),
    // 3.2.9, form-style query continuation
    ("{&who}", "&who=fred"),
    ("{&half}", "&half=50%25"),
    ("?fixed=yes{&x}", "?fixed=yes&x=1024"),
    ("{&x,y,empty}", "&x=1024&y=768&empty="),
    ("{&var:3}", "&var=val"),
    ("{&list}", "&list=red,green,blue"),
    ("{&list*}", "&list=red&list=green&list=blue"),
    ("{&keys}", "&keys=semi,%3B,dot,.,comma,%2C"),
    ("{&keys*}", "&semi=%3B&dot=.&comma=%2C"),
];

#[test]
fn every_rfc_example_matches_its_template() {
    for (template, expansion) in RFC_EXAMPLES {
        check(template, expansion, true);
    }
}

#[test]
fn mercure_selectors() {
    check(
        "https://example.com/books/{id}",
        "https://example.com/books/1",
        true,
    );
    check(
        "https://example.com/books/{id}",
        "https://example.com/books/1/reviews",
        false,
    );
    check(
        "https://example.com/books/{id}",
        "https://example.com/books/",
        true,
    ); // id = ""
    check(
        "https://example.com/books/{id}",
        "https://example.com/books",
        false,
    );
    check(
        "https://example.com/books/{id}",
        "http://example.com/books/1",
        false,
    );
    check(
        "https://example.com/books/{id}",
        "https://example.com/books/1?x=1",
        false,
    );
    check("/users/{user}/{+rest}", "/users/a/b/c", true);
    check("/users/{user}/{+rest}", "/users/a/", true);
    check("/users/{user}/{+rest}", "/users/a", false);
    check("/users/{user}/{+rest}", "/users/a/b/c?d#e", true);
    check(
        "https://example.com/users/foo/{?topic}",
        "https://example.com/users/foo/?topic=https%3A%2F%2Fexample.com%2Fbooks%2F1",
        true,
    );
    check(
        "https://example.com/users/foo/{?topic}",
        "https://example.com/users/foo/",
        true,
    );
    check(
        "https://example.com/users/foo/{?topic}",
        "https://example.com/users/foo/?topic=https://example.com/books/1",
        false,
    );
    check(
        "https://example.com/users/foo/{?topic}",
        "https://example.com/users/foo/?other=1",
        false,
    );
    check(
        "https://example.com/{+path}",
        "https://example.com/a/b?c=d",
        true,
    );
    check(
        "https://example.com/books/{id}{?page}",
        "https://example.com/books/7?page=2",
        true,
    );
    check(
        "https://example.com/books/{id}{?page}",
        "https://example.com/books/7?pag=2",
        false,
    );
    check(
        "urn:uuid:{id}",
        "urn:uuid:bb3de268-05b0-4c65-b44e-8f9acefc29d6",
        true,
    );
    check("/.well-known/mercure/subscriptions/{topic}/{subscriber}", "/.well-known/mercure/subscriptions/https%3A%2F%2Fexample.com%2F%7Bselector%7D/urn%3Auuid%3Abb3de268", true);
}

#[test]
fn simple_expansion() {
    check("{id}", "a%2Fb", true); // id = "a/b"
    check("{id}", "a%2fb", true); // hex digits in either case
    check("{id}", "a/b", false); // `/` is reserved: simple expansion encodes it
    check("{id}", "a,b", true); // a list
    check("{id}", "a=b", false); // `=` is reserved and only exploded pairs bring one
    check("{id*}", "a=b", true); // an exploded pair
    check("{id*}", "a=b,c=d", true);
    check("{id*}", "a=b,c", false); // pairs and items do not mix
    check("{id}", "50%", false); // a lone `%` is encoded as `%25`
    check("{id}", "50%2", false);
    check("{id}", "50%zz", false);
    check("{id}", "a b", false);
    check("{id}", "~-._", true);
    check("{id}", "", true);
    check("x{id}y", "xy", true);
    check("{x,y}", "1,2,3", true); // lists fit anywhere a string does, commas and all
    check("{a}{b}", "ab", true);
}

#[test]
fn reserved_and_fragment_expansion() {
    check("{+id}", "a/b?c#d[e]@!$&'()*+,;=", true);
    check("{+id}", "a%2Fb", true);
    check("{+id}", "50%", false);
    check("{+id}", "a b", false);
    check("{+id}", "a\"b", false);
    check("{+id}", "a{b}", false);
    check("{+id}", "a|b", false);
    check("{#id}", "#a/b", true);
    check("{#id}", "a/b", false); // missing the `#`
    check("{#id}", "", true); // undefined
    check("{#id}", "#", true); // empty
    check("{#a,b}", "#,", true); // two empty strings
    check("{#a,b}", "#x", true);
    check("{+a,b}", "x,y,z", true); // `,` is allowed raw
}

#[test]
fn label_path_and_parameters() {
    check("X{.a}", "X.b", true);
    check("X{.a}", "Xb", false);
    check("X{.a,b}", "X.1.2", true);
    check("X{.a,b}", "X.1.2.3", true); // `.` is unreserved: the value `2.3`
    check("{/a}", "/x", true);
    check("{/a}", "/x/y", false); // `/` in a value is encoded
    check("{/a*}", "/x/y", true); // an exploded list
    check("{/a,b}", "/x/y", true);
    check("{/a,b}", "/x/y/z", false);
    check("{/a,b}", "x/y", false);
    check("{;a}", ";a", true);
    check("{;a}", ";a=", true); // a list holding one empty string
    check("{;a}", ";a=1", true);
    check("{;a}", ";b=1", false);
    check("{;a,b}", ";b=1", true);
    check("{;a,b}", ";b=1;a=2", false); // in order
    check("{;a*}", ";x=1;y", true); // exploded pairs take any key
    check("{?a,b}", "?a=1&b=2", true);
    check("{?a,b}", "?b=2", true);
    check("{?a,b}", "?a=1", true);
    check("{?a,b}", "?b=2&a=1", false);
    check("{?a,b}", "?a", false); // `?` always brings `=`
    check("{?a,b}", "?a=1&", false);
    check("{?a,b}", "?", false);
    check("{?a,b}", "", true);
    check("{?a,b,c}", "?a=1&c=3", true);
    check("{?a,b,c}", "?c=3&a=1", false);
    check("{?a,b}", "&a=1", false);
    check("{&a}", "&a=1", true);
    check("{&a}", "?a=1", false);
    check("{?a*}", "?x=1&y=2", true);
    check("{?a*}", "?x", false);
    check("{?a}", "?a=1&b=2", false); // `&` in a value is encoded
    check("{?a}", "?a=1%262", true);
    check("{?a%20b}", "?a%20b=1", true); // a pct-encoded variable name
}

#[test]
fn prefixes() {
    check("{a:3}", "abc", true);
    check("{a:3}", "abcd", false);
    check("{a:3}", "", true);
    check("{a:3}", "a,b", false); // a prefix applies to strings only: no list
    check("{a:1}", "%C3%A9", true); // é: one character, two octets
    check("{a:1}", "é", true);
    check("{a:1}", "éé", false);
    check("{a:2}", "%2F%2F", true);
    check("{a:1}", "%2F%2F", false);
    check("{a:1}", "日", true);
    check("{a:1}", "%E6%97%A5", true);
    check("{a:1}", "%F0%9F%98%80", true); // 😀, four octets
    check("{;a:2}", ";a", true);
    check("{;a:2}", ";a=", false); // a prefixed value is a string: `=` only when not empty
    check("{;a:2}", ";a=xy", true);
    check("{;a:2}", ";a=xyz", false);
    check("{?a:2}", "?a=", true);
    check("{?a:2}", "?a=xyz", false);
    check("{+a:2}", "/b", true);
    check("{+a:2}", "/b/", false);
    check("{a:64}", &"x".repeat(64), true);
    check("{a:64}", &"x".repeat(65), false);
    // Above MAX_COUNTED_PREFIX the length is not counted; exact up to `n` bytes still.
    check("{a:65}", &"x".repeat(65), true);
    check("{a:9999}", &"x".repeat(9999), true);
}

#[test]
fn literals() {
    check("/a'b", "/a'b", true); // erratum 6937
    check("/caf%C3%A9", "/caf%c3%a9", true);
    check("/café", "/café", true);
    check("/café", "/caf%C3%A9", true); // the expansion percent-encodes it
    check("/café", "/cafe", false);
    check("/a.b", "/aXb", false); // regex metacharacters are literals
    check("/a+b", "/aab", false);
    check("/(a)*", "/(a)*", true);
    check("/[x]$", "/[x]$", true);
    check("/books/{id}", "/books/café", true); // an IRI's value
    check("/books/{id}", "/books/%C3%A9", true);
    check("/books/{id}", "/books/\u{85}", false); // a C1 control is never raw in an IRI
}

#[test]
fn parse_errors() {
    use TemplateError::*;
    check_error("{id", Unclosed { at: 0 });
    check_error("/a/{b{c}", Unclosed { at: 3 });
    check_error("/a}", StrayBrace { at: 2 });
    check_error("{}", BadVariable { at: 1 });
    check_error("{+}", BadVariable { at: 2 });
    check_error("{a,}", BadVariable { at: 3 });
    check_error("{,a}", ReservedOperator { at: 1 });
    check_error("{=a}", ReservedOperator { at: 1 });
    check_error("{!a}", ReservedOperator { at: 1 });
    check_error("{@a}", ReservedOperator { at: 1 });
    check_error("{|a}", ReservedOperator { at: 1 });
    check_error("{a-b}", BadVariable { at: 2 });
    check_error("{.a.}", BadVariable { at: 3 });
    check_error("{a..b}", BadVariable { at: 3 });
    check_error("{..a}", BadVariable { at: 2 }); // the first dot is the operator
    check_error("{;.a}", BadVariable { at: 2 });
    check_error("{a%2}", BadVariable { at: 2 });
    check_error("{é}", BadVariable { at: 1 });
    check_error("{a b}", BadVariable { at: 2 });
    check_error("{a:0}", BadPrefix { at: 3 });
    check_error("{a:01}", BadPrefix { at: 3 });
    check_error("{a:10000}", BadPrefix { at: 3 });
    check_error("{a:}", BadPrefix { at: 3 });
    check_error("{a:x}", BadPrefix { at: 3 });
    check_error("{a:3*}", BadPrefix { at: 3 });
    check_error("{a**}", BadVariable { at: 2 });
    check_error("{a*:3}", BadVariable { at: 2 });
    check_error("/a b", BadLiteral { at: 2 });
    check_error("/a\"", BadLiteral { at: 2 });
    check_error("/<a>", BadLiteral { at: 1 });
    check_error("/a\\", BadLiteral { at: 2 });
    check_error("/^", BadLiteral { at: 1 });
    check_error("/`", BadLiteral { at: 1 });
    check_error("/|", BadLiteral { at: 1 });
    check_error("/50%", BadLiteral { at: 3 });
    check_error("/%4g", BadLiteral { at: 1 });
    check_error("/\n", BadLiteral { at: 1 });
    check_error("/\u{7f}", BadLiteral { at: 1 });
    check_error("/\u{85}", BadLiteral { at: 1 });
    check_error("/\u{FFFE}", BadLiteral { at: 1 });
    check_error("/\u{FDD0}", BadLiteral { at: 1 });
    // `{a}` and `{b}` are fine, so this points at the second character of `{é}`.
    check_error("{a}{b}{é}", BadVariable { at: 7 });
}

#[test]
fn limits() {
    let long = "a".repeat(UriTemplate::MAX_LEN + 1);
    check_error(
        &long,
        TemplateError::TooLong {
            max: UriTemplate::MAX_LEN,
        },
    );
    assert!(UriTemplate::parse(&"a".repeat(UriTemplate::MAX_LEN)).is_ok());

    let expressions = |n: usize| (0..n).map(|i| format!("/{{v{i}}}")).collect::<String>();
    assert!(UriTemplate::parse(&expressions(UriTemplate::MAX_EXPRESSIONS)).is_ok());
    check_error(
        &expressions(UriTemplate::MAX_EXPRESSIONS + 1),
        TemplateError::TooManyExpressions {
            max: UriTemplate::MAX_EXPRESSIONS,
        },
    );

    let names = |n: usize| {
        (0..n)
            .map(|i| format!("v{i}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    // A query with the most variables allowed, each named differently, still compiles.
    let query = format!("{{?{}}}", names(UriTemplate::MAX_VARIABLES));
    let query = UriTemplate::parse(&query).unwrap();
    assert!(query.matches("?v0=1&v17=2&v63="));
    assert!(!query.matches("?v17=2&v0=1"));
    check_error(
        &format!("{{?{}}}", names(UriTemplate::MAX_VARIABLES + 1)),
        TemplateError::TooManyVariables {
            max: UriTemplate::MAX_VARIABLES,
        },
    );

    // Counted prefixes cost a copy per character: enough of them hit the compiled limit.
    let prefixes = (0..UriTemplate::MAX_EXPRESSIONS)
        .map(|i| format!("/{{v{i}:64}}"))
        .collect::<String>();
    check_error(
        &prefixes,
        TemplateError::TooBig {
            max: UriTemplate::MAX_COMPILED,
        },
    );
}

#[test]
fn errors_read_as_one_line() {
    for template in ["{id", "}", "{=a}", "{a-b}", "{a:0}", " "] {
        let message = UriTemplate::parse(template).unwrap_err().to_string();
        assert!(
            !message.is_empty() && !message.contains('\n'),
            "{message:?}"
        );
    }
    assert_eq!(
        UriTemplate::parse("/a/{b").unwrap_err().to_string(),
        "unclosed expression at byte 3"
    );
}

#[test]
fn is_template_and_identity() {
    assert!(UriTemplate::is_template("/books/{id}"));
    assert!(UriTemplate::is_template("{")); // not a valid one, but parse says so
    assert!(!UriTemplate::is_template("/books/1"));
    let a = UriTemplate::parse("/books/{id}").unwrap();
    let b = a.clone();
    assert_eq!(a, b);
    assert_eq!(a.as_str(), "/books/{id}");
    assert_eq!(a.to_string(), "/books/{id}");
    assert_ne!(a, UriTemplate::parse("/books/{+id}").unwrap());
    assert_eq!(format!("{a:?}"), "UriTemplate(\"/books/{id}\")");
    // A template without expressions matches itself.
    check(
        "https://example.com/books/1",
        "https://example.com/books/1",
        true,
    );
    check(
        "https://example.com/books/1",
        "https://example.com/books/2",
        false,
    );
}

// ---------------------------------------------------------------------------------------
// The property: every expansion of a template matches it.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Value {
    Undefined,
    Str(String),
    List(Vec<String>),
    Assoc(Vec<(String, String)>),
}

#[derive(Debug, Clone, Copy)]
enum Modifier {
    None,
    Prefix(usize),
    Explode,
}

#[derive(Debug, Clone)]
enum Part {
    Literal(String),
    Expression(char, Vec<(usize, Modifier)>),
}

const NAMES: &[&str] = &["a", "b", "c.d", "e_1", "F%41"];

fn is_unreserved(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~".contains(c)
}

fn is_reserved(c: char) -> bool {
    ":/?#[]@!$&'()*+,;=".contains(c)
}

fn pct_encode(c: char, out: &mut String) {
    let mut buf = [0; 4];
    for b in c.encode_utf8(&mut buf).bytes() {
        out.push_str(&format!("%{b:02X}"));
    }
}

/// RFC 6570 §3.2.1: keep the allowed characters, percent-encode the rest as UTF-8; for `+`
/// and `#`, reserved characters and pct-encoded triplets pass through too.
fn encode(value: &str, allow_reserved: bool) -> String {
    let chars: Vec<char> = value.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if allow_reserved
            && c == '%'
            && i + 2 < chars.len()
            && chars[i + 1].is_ascii_hexdigit()
            && chars[i + 2].is_ascii_hexdigit()
        {
            out.extend(&chars[i..i + 3]);
            i += 3;
            continue;
        }
        if is_unreserved(c) || (allow_reserved && is_reserved(c)) {
            out.push(c);
        } else {
            pct_encode(c, &mut out);
        }
        i += 1;
    }
    out
}

/// The expansion algorithm of RFC 6570 appendix A.
fn expand(parts: &[Part], values: &[Value]) -> String {
    let mut out = String::new();
    for part in parts {
        match part {
            Part::Literal(text) => {
                // §3.1: copied if allowed in a URI (or pct-encoded already), else encoded.
                out.push_str(&encode(text, true));
            }
            Part::Expression(op, varspecs) => {
                let (first, sep, named, ifemp, allow) = match op {
                    '+' => ("", ",", false, "", true),
                    '#' => ("#", ",", false, "", true),
                    '.' => (".", ".", false, "", false),
                    '/' => ("/", "/", false, "", false),
                    ';' => (";", ";", true, "", false),
                    '?' => ("?", "&", true, "=", false),
                    '&' => ("&", "&", true, "=", false),
                    _ => ("", ",", false, "", false),
                };
                let mut started = false;
                for &(var, modifier) in varspecs {
                    let name = NAMES[var];
                    let value = &values[var];
                    let defined = match value {
                        Value::Undefined => false,
                        Value::Str(_) => true,
                        Value::List(items) => !items.is_empty(),
                        Value::Assoc(pairs) => !pairs.is_empty(),
                    };
                    if !defined {
                        continue;
                    }
                    out.push_str(if started { sep } else { first });
                    started = true;
                    let explode = matches!(modifier, Modifier::Explode);
                    match value {
                        Value::Str(s) => {
                            if named {
                                out.push_str(name);
                                out.push_str(if s.is_empty() { ifemp } else { "=" });
                            }
                            let s: String = match modifier {
                                Modifier::Prefix(n) => s.chars().take(n).collect(),
                                _ => s.clone(),
                            };
                            out.push_str(&encode(&s, allow));
                        }
                        Value::List(items) if !explode => {
                            if named {
                                out.push_str(name);
                                out.push('=');
                            }
                            let items: Vec<String> =
                                items.iter().map(|i| encode(i, allow)).collect();
                            out.push_str(&items.join(","));
                        }
                        Value::Assoc(pairs) if !explode => {
                            if named {
                                out.push_str(name);
                                out.push('=');
                            }
                            let flat: Vec<String> = pairs
                                .iter()
                                .flat_map(|(k, v)| [encode(k, allow), encode(v, allow)])
                                .collect();
                            out.push_str(&flat.join(","));
                        }
                        Value::List(items) => {
                            let items: Vec<String> = items
                                .iter()
                                .map(|item| {
                                    if !named {
                                        encode(item, allow)
                                    } else if item.is_empty() {
                                        format!("{name}{ifemp}")
                                    } else {
                                        format!("{name}={}", encode(item, allow))
                                    }
                                })
                                .collect();
                            out.push_str(&items.join(sep));
                        }
                        Value::Assoc(pairs) => {
                            let pairs: Vec<String> = pairs
                                .iter()
                                .map(|(k, v)| {
                                    if named && v.is_empty() {
                                        format!("{}{ifemp}", encode(k, allow))
                                    } else {
                                        format!("{}={}", encode(k, allow), encode(v, allow))
                                    }
                                })
                                .collect();
                            out.push_str(&pairs.join(sep));
                        }
                        Value::Undefined => unreachable!(),
                    }
                }
            }
        }
    }
    out
}

fn render(parts: &[Part]) -> String {
    let mut out = String::new();
    for part in parts {
        match part {
            Part::Literal(text) => out.push_str(text),
            Part::Expression(op, varspecs) => {
                out.push('{');
                if *op != ' ' {
                    out.push(*op);
                }
                let specs: Vec<String> = varspecs
                    .iter()
                    .map(|&(var, modifier)| match modifier {
                        Modifier::None => NAMES[var].to_string(),
                        Modifier::Prefix(n) => format!("{}:{n}", NAMES[var]),
                        Modifier::Explode => format!("{}*", NAMES[var]),
                    })
                    .collect();
                out.push_str(&specs.join(","));
                out.push('}');
            }
        }
    }
    out
}

/// Characters for values: unreserved, reserved, `%` alone and in triplets, space, and
/// non-ASCII of one to four UTF-8 octets.
fn value_string() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "a", "Z", "0", "-", ".", "_", "~", "/", "?", "#", "&", "=", ",", ";", ":", "%", "%41",
        "%2f", " ", "é", "日", "😀", "'", "!", "[", "+", "*", "\"", "{", "|",
    ]);
    prop::collection::vec(pieces, 0..6).prop_map(|p| p.concat())
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Undefined),
        value_string().prop_map(Value::Str),
        prop::collection::vec(value_string(), 0..4).prop_map(Value::List),
        prop::collection::vec((value_string(), value_string()), 0..4).prop_map(Value::Assoc),
    ]
}

fn literal() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "a",
        "/",
        "?",
        "=",
        "&",
        "#",
        ".",
        ",",
        ";",
        "é",
        "%2f",
        "%C3%A9",
        "'",
        "(",
        "*",
        "~",
        "https://example.com/",
        "日本",
    ]);
    prop::collection::vec(pieces, 1..4).prop_map(|p| p.concat())
}

fn part() -> impl Strategy<Value = Part> {
    let modifier = prop_oneof![
        Just(Modifier::None),
        (1usize..8).prop_map(Modifier::Prefix),
        Just(Modifier::Explode),
    ];
    let varspecs = prop::collection::vec((0..NAMES.len(), modifier), 1..4);
    let op = prop::sample::select(vec![' ', '+', '#', '.', '/', ';', '?', '&']);
    prop_oneof![
        literal().prop_map(Part::Literal),
        (op, varspecs).prop_map(|(op, specs)| Part::Expression(op, specs)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_expansion_matches(
        parts in prop::collection::vec(part(), 1..5),
        mut values in prop::collection::vec(value(), NAMES.len()),
    ) {
        // A prefix applies to strings only (RFC 6570 §2.4.1): give a prefixed variable a
        // string value, or none.
        for part in &parts {
            if let Part::Expression(_, specs) = part {
                for &(var, modifier) in specs {
                    if matches!(modifier, Modifier::Prefix(_))
                        && matches!(values[var], Value::List(_) | Value::Assoc(_))
                    {
                        values[var] = Value::Undefined;
                    }
                }
            }
        }
        let template = render(&parts);
        let expansion = expand(&parts, &values);
        let compiled = UriTemplate::parse(&template).unwrap();
        prop_assert!(
            compiled.matches(&expansion),
            "{template:?} does not match its expansion {expansion:?} with {values:?}"
        );
    }

    /// Parsing anything never panics, and a string that parses matches itself when it has
    /// no expression.
    #[test]
    fn parsing_anything_is_safe(text in "\\PC{0,40}|[{}a-z,:*+#./;?&=!@|%0-9]{0,20}") {
        if let Ok(template) = UriTemplate::parse(&text) {
            if !UriTemplate::is_template(&text) {
                prop_assert!(template.matches(&text));
            }
        }
    }
}
