import Foundation
import XCTest

@testable import RunbookAWS
@testable import RunbookCLI
@testable import RunbookEngine
@testable import RunbookProcess
@testable import RunbookState
@testable import UniSyncRunbook

/// Secret inputs: gathered before any call, delivered as 0600 files or on stdin, never in argv,
/// the checkpoint, the journal or the audit log.
final class EngineSecretTests: XCTestCase {
  /// What a command saw in its secret files while it ran.
  struct Seen: Sendable {
    var values: [String]
    var filePermissions: [Int]
    var folderPermissions: [Int]
    var paths: [String]
  }

  func recordingFiles(_ fixture: EngineFixture, _ prefix: String..., reply: String) -> Locked<Seen?>
  {
    let seen = Locked<Seen?>(nil)
    fixture.runner.on(prefix) { invocation in
      let paths = invocation.arguments.filter { $0.hasPrefix("file://") }.map {
        String($0.dropFirst(7))
      }
      let record = Seen(
        values: fileArguments(invocation),
        filePermissions: paths.map { (try? permissions(of: $0)) ?? -1 },
        folderPermissions: paths.map {
          (try? permissions(of: URL(fileURLWithPath: $0).deletingLastPathComponent().path)) ?? -1
        },
        paths: paths)
      seen.withLock { $0 = record }
      return .ok(reply)
    }
    return seen
  }

  /// The Canvas token: one value, from TEST_CANVAS_TOKEN.
  static let canvas = SecretInput(
    name: "canvas", label: "the Canvas API token",
    source: .supplied(
      fields: [SuppliedField(field: "value", environmentVariable: "TEST_CANVAS_TOKEN")], file: nil))

  /// The Cognito settings: two fields, from TEST_POOL and TEST_CLIENT, else from `file`.
  static func cognito(file: String?) -> SecretInput {
    SecretInput(
      name: "cognito", label: "the Cognito settings",
      source: .supplied(
        fields: [
          SuppliedField(field: "userPoolId", environmentVariable: "TEST_POOL"),
          SuppliedField(field: "clientId", environmentVariable: "TEST_CLIENT"),
        ], file: file))
  }

  /// One write, `create-token`, reading the secret from a file.
  func tokenStep(_ secret: SecretInput) -> TestStep {
    TestStep(
      "s",
      [createAction("token", export: "TOKEN_ARN", arguments: [.secretFile(secret.name)])],
      secrets: [secret])
  }

  func testGeneratedSecretsAreDeliveredAsPrivateFilesAndOnStdin() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    let seen = recordingFiles(fixture, "aws", "test", "create-key", reply: "key-1")
    fixture.runner.on("docker", "login", reply: .ok("Login Succeeded"))
    let step = TestStep(
      "s",
      [
        createAction(
          "key", export: "KEY_ARN",
          arguments: ["--value", .secretFile("key"), "--pw", .secretFile("pw")]),
        Action(
          name: "login", summary: "log in", effect: .write,
          command: Command(
            tool: "docker", arguments: ["login", "--password-stdin"], input: .secret("pw")),
          after: ["key"]),
      ],
      secrets: [
        SecretInput(name: "key", label: "the encryption key", source: .randomBase64(bytes: 32)),
        SecretInput(name: "pw", label: "the password", source: .randomPassword(length: 24)),
      ])
    _ = try await fixture.engine([step]).run([step])

    let record = try XCTUnwrap(seen.value)
    XCTAssertEqual(record.values.count, 2)
    guard record.values.count == 2 else { return }
    let key = record.values[0]
    let password = record.values[1]
    XCTAssertEqual(Data(base64Encoded: key)?.count, 32, key)
    XCTAssertEqual(password.count, 24)
    XCTAssertNil(password.rangeOfCharacter(from: CharacterSet(charactersIn: "/@\" ")), password)
    XCTAssertEqual(record.filePermissions, [0o600, 0o600])
    XCTAssertEqual(record.folderPermissions, [0o700, 0o700])
    for path in record.paths {
      XCTAssertTrue(
        path.hasPrefix(fixture.state.scratchDirectory + "/"),
        "\(path) is not in the state directory's private folder")
      XCTAssertFalse(FileManager.default.fileExists(atPath: path), "\(path) was left behind")
    }
    XCTAssertEqual(try permissions(of: fixture.state.scratchDirectory), 0o700)
    XCTAssertEqual(
      try FileManager.default.contentsOfDirectory(atPath: fixture.state.scratchDirectory), [],
      "the run's private folder is removed at its end")
    XCTAssertEqual(fixture.runner.calls("docker", "login").first?.stdinText, password)
    try assertNowhere([key, password], fixture)
  }

  /// A command's only secret reaches it on standard input (`file:///dev/stdin`): no file, in the
  /// state directory or the temporary folder, ever holds it.
  func testASoleSecretIsPipedAndNeverWritten() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    let value = "canvas-" + UUID().uuidString
    let holding = Locked<[String]?>(nil)
    let folder = fixture.folder.path
    fixture.runner.on(["aws", "test", "create-token"]) { invocation in
      // What is on disk while the command runs: the state directory, and the folders the tool
      // makes in the temporary folder (runbook-XXXXXX), if any.
      let files = Self.filesBelow(folder) + Self.temporaryFilesOfTheTool()
      holding.withLock {
        $0 = files.filter {
          String(decoding: contents(of: $0) ?? Data(), as: UTF8.self).contains(value)
        }
      }
      return .ok("token-1")
    }
    let step = tokenStep(Self.canvas)
    _ = try await fixture.engine([step], environment: ["TEST_CANVAS_TOKEN": value]).run([step])
    let call = try XCTUnwrap(fixture.runner.calls("aws", "test", "create-token").first)
    XCTAssertEqual(call.argv.filter { $0.hasPrefix("file://") }, ["file:///dev/stdin"])
    XCTAssertEqual(call.stdinText, value)
    XCTAssertEqual(holding.value, [], "files held the secret while the command ran")
  }

  /// What a killed run left in the state directory's private folder is removed at the start of
  /// the next run, even one that stops before its first call; a folder a living run holds is not.
  func testFilesAKilledRunLeftAreRemovedFirstAndALivingRunsAreKept() async throws {
    let fixture = try EngineFixture(test: self)
    let scratch = fixture.state.scratchDirectory
    try FileManager.default.createDirectory(
      atPath: scratch + "/run-dead/runbook-abc", withIntermediateDirectories: true)
    writeFile(scratch + "/run-dead/runbook-abc/value-1", contents: Data("left-secret".utf8))
    writeFile(scratch + "/run-dead.lock", contents: Data())
    writeFile(scratch + "/.run-torn.lock", contents: Data())
    try FileManager.default.createDirectory(
      atPath: scratch + "/run-nolock", withIntermediateDirectories: true)
    let living = try PrivateFolder(in: scratch)
    defer { living.remove() }
    writeFile(living.path + "/value-1", contents: Data("in-use".utf8))

    // This run stops before any call (no value for the secret), after the cleanup.
    let step = tokenStep(Self.canvas)
    _ = await assertThrows(UsageError.self) {
      try await fixture.engine([step], environment: ["TEST_CANVAS_TOKEN": ""]).run([step])
    }
    XCTAssertEqual(fixture.runner.calls, [])
    let left = try FileManager.default.contentsOfDirectory(atPath: scratch).sorted()
    let name = URL(fileURLWithPath: living.path).lastPathComponent
    XCTAssertEqual(left, [name, name + ".lock"])
    XCTAssertEqual(contents(of: living.path + "/value-1"), Data("in-use".utf8))
    XCTAssertTrue(
      fixture.reporter.notes.contains { $0.contains("removed 2 private folder(s)") },
      "\(fixture.reporter.notes)")
  }

  func testEachRunGeneratesDifferentValues() async throws {
    var keys: [String] = []
    for _ in 0..<2 {
      let fixture = try EngineFixture(test: self)
      fixture.runner.answerCallerIdentity()
      let seen = recordingFiles(fixture, "aws", "test", "create-key", reply: "key-1")
      let step = TestStep(
        "s", [createAction("key", export: "KEY_ARN", arguments: [.secretFile("key")])],
        secrets: [SecretInput(name: "key", label: "k", source: .randomBase64(bytes: 32))])
      _ = try await fixture.engine([step]).run([step])
      keys.append(try XCTUnwrap(seen.value?.values.first))
    }
    XCTAssertNotEqual(keys[0], keys[1])
  }

  func testSuppliedSecretsComeFromTheEnvironment() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    let seen = recordingFiles(fixture, "aws", "test", "create-token", reply: "token-1")
    let step = TestStep(
      "s",
      [
        createAction(
          "token", export: "TOKEN_ARN", arguments: [.secretFile("canvas"), .secretFile("cognito")])
      ],
      secrets: [Self.canvas, Self.cognito(file: nil)])
    let environment = [
      "TEST_CANVAS_TOKEN": "canvas-tok-'quoted'-123", "TEST_POOL": "pool-9876",
      "TEST_CLIENT": "client-5432",
    ]
    _ = try await fixture.engine([step], environment: environment).run([step])
    XCTAssertEqual(
      seen.value?.values,
      ["canvas-tok-'quoted'-123", #"{"clientId":"client-5432","userPoolId":"pool-9876"}"#])
    try assertNowhere(["canvas-tok-'quoted'-123", "pool-9876", "client-5432"], fixture)
  }

  func testSuppliedSecretFromAFile() async throws {
    let fixture = try EngineFixture(test: self)
    let file = fixture.folder.appendingPathComponent("cognito.json").path
    writeFile(file, contents: Data(#"{"userPoolId": "pool-from-file", "clientId": "c-1"}"#.utf8))
    fixture.runner.answerCallerIdentity()
    let seen = recordingFiles(fixture, "aws", "test", "create-token", reply: "token-1")
    let step = tokenStep(Self.cognito(file: file))
    // The environment wins over the file, field by field.
    _ = try await fixture.engine([step], environment: ["TEST_CLIENT": "c-env"]).run([step])
    XCTAssertEqual(seen.value?.values, [#"{"clientId":"c-env","userPoolId":"pool-from-file"}"#])
  }

  func testMissingSuppliedSecretWithoutATerminalNamesTheVariableBeforeAnyCall() async throws {
    let fixture = try EngineFixture(test: self)
    let step = tokenStep(Self.canvas)
    let error = await assertThrows(UsageError.self) {
      try await fixture.engine([step], environment: ["TEST_CANVAS_TOKEN": ""]).run([step])
    }
    XCTAssertEqual(
      error?.message,
      "step 's' needs the Canvas API token: set TEST_CANVAS_TOKEN, name a file in the configuration, or run in a terminal to be asked"
    )
    XCTAssertEqual(fixture.runner.calls, [])
  }

  func testMissingSuppliedSecretIsAskedInATerminal() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    let seen = recordingFiles(fixture, "aws", "test", "create-token", reply: "token-1")
    let step = tokenStep(Self.canvas)
    let prompter = ScriptedPrompter(approvals: [.yes], secrets: ["typed-token-77"])
    _ = try await fixture.engine([step], prompter: prompter, yes: false).run([step])
    XCTAssertEqual(prompter.secretQuestions, ["the Canvas API token (value)"])
    XCTAssertEqual(seen.value?.values, ["typed-token-77"])
    XCTAssertFalse(prompter.questions.contains { $0.command.contains("typed-token-77") })
    try assertNowhere(["typed-token-77"], fixture)
  }

  func testSecretsOfFinishedActionsAreNotDemanded() async throws {
    let fixture = try EngineFixture(test: self)
    try fixture.seedCheckpoint {
      $0.actions["s/token"] = ActionRecord(
        status: .done, outcome: .created, value: "token-1", export: "TOKEN_ARN")
      $0.exports["TOKEN_ARN"] = "token-1"
    }
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test", "create-use", reply: .ok("use-1"))
    let step = TestStep(
      "s",
      [
        createAction("token", export: "TOKEN_ARN", arguments: [.secretFile("canvas")]),
        createAction("use", export: nil, arguments: [.ref("TOKEN_ARN")]),
      ],
      secrets: [Self.canvas])
    let summary = try await fixture.engine([step]).run([step])
    XCTAssertEqual(summary.outcomes, ["s/token": .alreadyDone, "s/use": .created])
  }

  /// The files in the folders the tool makes in the temporary folder.
  static func temporaryFilesOfTheTool() -> [String] {
    let temporary = FileManager.default.temporaryDirectory.path
    let names = (try? FileManager.default.contentsOfDirectory(atPath: temporary)) ?? []
    return names.filter {
      $0.range(of: "^runbook-(run-)?[A-Za-z0-9]{6}$", options: .regularExpression) != nil
    }.flatMap { filesBelow(temporary + "/" + $0) }
  }

  /// Every file below `folder` (none when it cannot be read).
  static func filesBelow(_ folder: String) -> [String] {
    let enumerator = FileManager.default.enumerator(atPath: folder)
    var files: [String] = []
    while let name = enumerator?.nextObject() as? String {
      var isDirectory: ObjCBool = false
      let path = folder + "/" + name
      if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory),
        !isDirectory.boolValue
      {
        files.append(path)
      }
    }
    return files
  }

  /// No secret value in any recorded argv, nor in the checkpoint, journal or audit log.
  func assertNowhere(
    _ secrets: [String], _ fixture: EngineFixture, file: StaticString = #filePath,
    line: UInt = #line
  ) throws {
    for call in fixture.runner.calls {
      for secret in secrets {
        XCTAssertFalse(
          call.argv.contains { $0.contains(secret) }, "argv of \(call) holds a secret", file: file,
          line: line)
      }
    }
    let logs = try FileManager.default.contentsOfDirectory(atPath: fixture.state.logsDirectory)
    XCTAssertFalse(logs.isEmpty, file: file, line: line)
    let files =
      [fixture.state.stateFile, fixture.state.journalFile]
      + logs.map { fixture.state.logsDirectory + "/" + $0 }
    for path in files {
      let text = String(decoding: contents(of: path) ?? Data(), as: UTF8.self)
      XCTAssertFalse(text.isEmpty, "\(path) is empty", file: file, line: line)
      for secret in secrets {
        XCTAssertFalse(text.contains(secret), "\(path) holds a secret", file: file, line: line)
      }
    }
  }
}
