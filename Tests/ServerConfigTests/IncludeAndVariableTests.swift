import XCTest
@testable import ServerConfig

final class IncludeAndVariableTests: XCTestCase {
    // MARK: include

    func test_include_mergesEntriesAtTopLevelAndInBlocks() throws {
        let files = [
            "/etc/nats/base.conf": "port: 4222\nhttp: 8222\n",
            "/etc/nats/auth/users.conf": "users: [ {user: a, password: b} ]\n",
        ]
        let root = try parseConfig("""
        include base.conf
        server_name: n1
        authorization {
          include "auth/users.conf"
          timeout: 2
        }
        """, files: files, fileName: "/etc/nats/main.conf")
        XCTAssertEqual(root, .block([
            "port": .integer(4222), "http": .integer(8222), "server_name": .string("n1"),
            "authorization": .block([
                "users": .array([.block(["user": .string("a"), "password": .string("b")])]),
                "timeout": .integer(2),
            ]),
        ]))
    }

    func test_include_isRelativeToTheIncludingFile_notTheRoot() throws {
        let files = [
            "conf/a/one.conf": "include '../b/two.conf'\nfrom_one: 1",
            "conf/b/two.conf": "include ./three.conf; from_two: 2",
            "conf/b/three.conf": "from_three: 3",
        ]
        let root = try parseConfig("include a/one.conf", files: files, fileName: "conf/main.conf")
        XCTAssertEqual(root, .block(["from_three": .integer(3), "from_two": .integer(2), "from_one": .integer(1)]))
    }

    func test_include_laterKeysOverrideIncludedOnes_andViceVersa() throws {
        let files = ["d.conf": "port: 1\nname: inc"]
        let root = try parseConfig("port: 9\ninclude d.conf\nname: main", files: files, fileName: "m.conf")
        XCTAssertEqual(root, .block(["port": .integer(1), "name": .string("main")]))
    }

    func test_include_keysDefinedByIncludedFile_areVariablesForLaterLines() throws {
        let root = try parseConfig("include vars.conf\nport: $PORT", files: ["vars.conf": "PORT: 4333"], fileName: "m.conf")
        XCTAssertEqual(try root.int("port"), 4333)
    }

    func test_include_cannotSeeIncludingFilesKeys_likeNats() {
        let error = configError("A: 1\ninclude x.conf", files: ["x.conf": "b: $A"], fileName: "m.conf")
        XCTAssertEqual(error?.description, "x.conf:1:4: unknown variable '$A': not a key defined earlier in this or an enclosing block, nor an environment variable")
    }

    func test_include_cycle_isReportedWithTheChain() {
        let files = [
            "/c/a.conf": "x: 1\ninclude b.conf\n",
            "/c/b.conf": "y: 2\n  include ./a.conf\n",
        ]
        let error = configError("include a.conf", files: files, fileName: "/c/main.conf")
        XCTAssertEqual(error?.description, "/c/b.conf:2:3: include cycle: /c/a.conf -> /c/b.conf -> /c/a.conf")
    }

    func test_include_selfInclude_isACycle() {
        let error = configError("include main.conf", files: [:], fileName: "main.conf")
        XCTAssertEqual(error?.description, "main.conf:1:1: include cycle: main.conf -> main.conf")
    }

    func test_include_missingFile_reportsResolvedPathAtIncludeLine() {
        let error = configError("a: 1\ninclude \"nope.conf\"", fileName: "/etc/main.conf")
        XCTAssertEqual(error?.description, "/etc/main.conf:2:1: cannot read included file '/etc/nope.conf': no such file")
    }

    func test_include_errorInsideIncludedFile_isReportedInThatFile() {
        let error = configError("include bad.conf", files: ["conf/bad.conf": "a {\n b: 1\n"], fileName: "conf/main.conf")
        XCTAssertEqual(error?.description, "conf/bad.conf:3:1: expected '}' to close block 'a' opened at 1:1")
    }

    func test_include_bareJsonStylePath_endsAtCommaOrSemicolon() throws {
        let root = try parseConfig("{ include a.conf, include b.conf; port: 1 }", files: ["a.conf": "x: 1", "b.conf": "y: 2"], fileName: "m.conf")
        XCTAssertEqual(root, .block(["x": .integer(1), "y": .integer(2), "port": .integer(1)]))
    }

    func test_include_withoutReader_isAnError() {
        XCTAssertThrowsError(try ConfigParser().parse("include x.conf", fileName: "m.conf")) { error in
            XCTAssertEqual("\(error)", "m.conf:1:1: cannot include 'x.conf': no file reader was provided")
        }
    }

    func test_include_junkAfterPath_isAnError() {
        let error = configError("include a.conf b.conf", files: ["a.conf": ""], fileName: "m.conf")
        XCTAssertEqual(error?.description, "m.conf:1:16: expected a newline, ';' or end of file after include, found 'b'")
    }

    func test_include_chainDeeperThanLimit_isAnError() {
        var files: [String: String] = [:]
        for level in 0..<40 { files["f\(level).conf"] = "include f\(level + 1).conf" }
        let error = configError("include f0.conf", files: files, fileName: "m.conf")
        XCTAssertEqual(error?.message, "includes are nested deeper than 16 files")
    }

    // MARK: variables

    func test_variable_fromEarlierKeyInSameOrEnclosingBlock() throws {
        let root = try parseConfig("""
        PORT: 4222
        TOKEN: "s3cr3t"
        listen: $PORT
        cluster {
          NAME: c1
          name: $NAME
          port: $PORT
          routes: [ $NAME ]
          nested { t: $TOKEN }
        }
        """)
        XCTAssertEqual(try root.int("listen"), 4222)
        let cluster = try XCTUnwrap(try root.block("cluster"))
        XCTAssertEqual(try cluster.string("name"), "c1")
        XCTAssertEqual(try cluster.int("port"), 4222)
        XCTAssertEqual(try cluster.array("routes"), [.string("c1")])
        XCTAssertEqual(try cluster.block("nested")?.string("t"), "s3cr3t")
    }

    func test_variable_innerScopeShadowsOuter_andDoesNotLeakOut() throws {
        let root = try parseConfig("X: outer\nb { X: inner\n v: $X }\nw: $X")
        XCTAssertEqual(try root.block("b")?.string("v"), "inner")
        XCTAssertEqual(try root.string("w"), "outer")
    }

    func test_variable_blockValuedVariable_copiesTheBlock() throws {
        let root = try parseConfig("perms { publish: [\"a.>\"] }\nusers: [ {user: u, permissions: $perms} ]")
        XCTAssertEqual(try root.array("users")?.first?.block("permissions"), .block(["publish": .array([.string("a.>")])]))
    }

    func test_variable_fromEnvironment_isParsedAsAValue() throws {
        let env = ["NAME": "node-1", "PORT": "4222", "BIG": "10GB", "ON": "true", "LIST": "[a, b]", "EMPTY": "", "Q": "\"x y\""]
        let root = try parseConfig("n: $NAME\np: $PORT\ns: $BIG\nb: $ON\nl: $LIST\ne: $EMPTY\nq: $Q", env: env)
        XCTAssertEqual(root, .block([
            "n": .string("node-1"), "p": .integer(4222), "s": .integer(10 << 30), "b": .bool(true),
            "l": .array([.string("a"), .string("b")]), "e": .string(""), "q": .string("x y"),
        ]))
    }

    func test_variable_fileKeyWinsOverEnvironment() throws {
        XCTAssertEqual(try parseConfig("X: file\nv: $X", env: ["X": "env"])["v"], .string("file"))
    }

    func test_variable_environmentReferencingEnvironment_resolves() throws {
        XCTAssertEqual(try parseConfig("v: $A", env: ["A": "$B", "B": "42"])["v"], .integer(42))
    }

    func test_variable_environmentCycle_isAnError() {
        let error = configError("v: $A", env: ["A": "$B", "B": "$A"])
        XCTAssertEqual(error?.description, "test.conf:1:4: environment variable 'A' does not hold a valid value: environment variable cycle: $A -> $B -> $A")
    }

    func test_variable_environmentValueThatIsNotOneValue_isAnError() {
        let error = configError("v: $A", env: ["A": "two words"])
        XCTAssertEqual(error?.description, "test.conf:1:4: environment variable 'A' does not hold a valid value: unexpected 'w' after the value")
    }

    func test_variable_bcryptHash_isKeptAsString() throws {
        let hash = "$2a$11$W2zko751KUvVy59mUTWmpOdWjpEm5qhcCZRd05GjI/sSOT.xtiHyG"
        XCTAssertEqual(try parseConfig("password: \(hash)")["password"], .string(hash))
    }

    func test_variable_insideQuotedString_isNotExpanded() throws {
        XCTAssertEqual(try parseConfig("A: 1\nv: \"$A\"")["v"], .string("$A"))
    }
}
