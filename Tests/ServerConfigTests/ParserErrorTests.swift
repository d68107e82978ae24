import XCTest
@testable import ServerConfig

/// Broken files: each asserts the exact `file:line:column: message` the user sees.
final class ParserErrorTests: XCTestCase {
    private func assertError(_ text: String, _ expected: String, env: [String: String] = [:],
                             fileName: String = "clusterd.conf", file: StaticString = #filePath, line: UInt = #line) {
        guard let error = configError(text, env: env, fileName: fileName, file: file, line: line) else { return }
        XCTAssertEqual(error.description, expected, file: file, line: line)
    }

    func test_unclosedBlock_reportsEndAndWhereBlockOpened() {
        let text = """
        server_name: n1

        cluster {
          name: c1
          routes [
            nats://a:6222
          ]
        """
        assertError(text, "clusterd.conf:7:4: expected '}' to close block 'cluster' opened at 3:1")
    }

    func test_unclosedNestedAnonymousBlock_inArray() {
        assertError("users [\n  {user: a\n]\n", "clusterd.conf:3:1: expected '}' to close block opened at 2:3, found ']'")
        assertError("users [\n  {user: a\n", "clusterd.conf:3:1: expected '}' to close block opened at 2:3")
    }

    func test_unclosedArray_reportsWhereArrayOpened() {
        assertError("a: 1\nroutes: [\n  x,\n  y\n", "clusterd.conf:5:1: expected ']' to close array 'routes' opened at 2:1")
        assertError("b { routes: [x }", "clusterd.conf:1:16: expected ',', a newline or ']' after an element of array 'routes', found '}'")
    }

    func test_strayClosingBrace_atTopLevel() {
        assertError("a: 1\n}\n", "clusterd.conf:2:1: unexpected '}' with no open block")
    }

    func test_twoValuesOnOneLine_isAnError() {
        assertError("port: 4222 6222\n", "clusterd.conf:1:12: expected a newline, ';' or end of file after the value of 'port', found '6'")
        assertError("c {\n  port: 1 2\n}", "clusterd.conf:2:11: expected a newline, ';' or '}' after the value of 'port', found '2'")
    }

    func test_keyWithoutValue() {
        assertError("port:\n", "clusterd.conf:1:6: expected a value for key 'port'")
        assertError("a: 1\nport\n", "clusterd.conf:2:5: expected a value for key 'port'")
        assertError("port = # nothing\n", "clusterd.conf:1:8: expected a value for key 'port'")
        assertError("c { port: }", "clusterd.conf:1:11: expected a value for key 'port', found '}'")
    }

    func test_unterminatedStrings_pointAtOpeningQuote() {
        assertError("a: 1\nname: \"abc\n", "clusterd.conf:2:7: unterminated double-quoted string")
        assertError("name: 'abc", "clusterd.conf:1:7: unterminated single-quoted string")
        assertError("\"key: 1", "clusterd.conf:1:1: unterminated quoted key")
        assertError("t: (\nabc\n", "clusterd.conf:3:1: unterminated '(' block: expected ')' alone on a line to close the block opened at 1:4")
    }

    func test_badEscapes() {
        assertError(#"s: "a\qb""#, #"clusterd.conf:1:6: invalid escape '\q': only \xHH, \t, \n, \r, \" and \\ are allowed"#)
        assertError(#"s: "\xZZ""#, #"clusterd.conf:1:5: expected two hexadecimal digits after '\x'"#)
    }

    func test_badNumbers() {
        assertError("a: 1.\n", "clusterd.conf:1:4: expected a digit after '.' in '1.'")
        assertError("a: .5\n", "clusterd.conf:1:4: floats must start with a digit: '.5'")
        assertError("a: -x\n", "clusterd.conf:1:4: expected a digit after '-' in '-x'")
        assertError("a: 1.5GB\n", "clusterd.conf:1:4: unexpected 'G' after the number '1.5' in '1.5GB'; quote the value if it is text")
        assertError("a: 99999999999999999999\n", "clusterd.conf:1:4: integer '99999999999999999999' is out of range")
        assertError("a: 10E\n", "clusterd.conf:1:4: size '10E' does not fit in a 64-bit integer")
        assertError("a: 5kbb\n", "clusterd.conf:1:4: unknown size suffix 'kbb' in '5kbb'; use \(SizeUnits.suffixList)")
        assertError("a: 2024-01-01\n", "clusterd.conf:1:4: dates must be in full Zulu form (YYYY-MM-DDTHH:MM:SSZ): '2024-01-01'")
    }

    func test_arraySyntaxErrors() {
        assertError("a: [1,,2]", "clusterd.conf:1:7: unexpected ',' in array 'a': empty element")
        assertError("a: [, 1]", "clusterd.conf:1:5: unexpected ',' in array 'a': empty element")
        assertError("a: [1 2]", "clusterd.conf:1:7: expected ',', a newline or ']' after an element of array 'a', found '2'")
    }

    func test_badKeys() {
        assertError(": 1", "clusterd.conf:1:1: expected a key, found ':'")
        assertError("a: 1\n  = 2", "clusterd.conf:2:3: expected a key, found '='")
        assertError("[1]", "clusterd.conf:1:1: expected a key, found '['")
    }

    func test_unknownVariable_pointsAtReference() {
        assertError("a {\n  b: $missing\n}", "clusterd.conf:2:6: unknown variable '$missing': not a key defined earlier in this or an enclosing block, nor an environment variable")
        assertError("x: $\n", "clusterd.conf:1:4: expected a variable name after '$'")
    }

    func test_variablesAreCaseSensitive_likeNats() {
        assertError("port: 1\nb: $PORT\n", "clusterd.conf:2:4: unknown variable '$PORT': not a key defined earlier in this or an enclosing block, nor an environment variable")
    }

    func test_junkAfterJsonWrapper() {
        assertError("{ a: 1 }\nb: 2\n", "clusterd.conf:2:1: unexpected 'b' after the closing '}' of the top-level block")
    }

    func test_deepNesting_isAnErrorNotACrash() {
        let deep = "a: " + String(repeating: "[", count: 10_000)
        assertError(deep, "clusterd.conf:1:132: blocks and arrays are nested deeper than 128 levels")
    }

    func test_errorColumns_countUnicodeScalarsAndTabs() {
        assertError("n: \"é\"\t1", "clusterd.conf:1:8: expected a newline, ';' or end of file after the value of 'n', found '1'")
    }

    func test_errorWithoutLocation_whenRootFileUnreadable() {
        let parser = ConfigParser(readFile: { _ in throw MemoryFiles.NotFound(path: "x") })
        XCTAssertThrowsError(try parser.parseFile(atPath: "/etc/x.conf")) { error in
            XCTAssertEqual((error as? ConfigError)?.description, "/etc/x.conf: cannot read config file: no such file")
        }
    }
}
