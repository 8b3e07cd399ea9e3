import Foundation
import XCTest

@testable import RunbookAWS
@testable import RunbookCLI
@testable import RunbookEngine
@testable import RunbookProcess
@testable import RunbookState
@testable import UniSyncRunbook

/// `state.json`: atomic saves, the backup, and refusing (without touching) files it cannot use.
final class CheckpointTests: XCTestCase {
  var state: StateDirectory!

  override func setUpWithError() throws {
    state = StateDirectory(path: try makeScratchFolder().appendingPathComponent("state").path)
    try state.prepare()
  }

  func sample() -> Checkpoint {
    var checkpoint = Checkpoint(deployment: "unisync", region: "ap-northeast-2", lineage: "lin-1")
    checkpoint.account = "123456789012"
    checkpoint.serial = 7
    checkpoint.exports = ["VPC_ID": "vpc-0a1", "IGW_ID": "igw-0b2", "SG_ID": "sg-1"]
    checkpoint.actions = [
      "network/vpc": ActionRecord(
        status: .done, outcome: .created, value: "vpc-0a1", export: "VPC_ID"),
      "network/internet-gateway": ActionRecord(
        status: .done, outcome: .recovered, value: "igw-0b2", export: "IGW_ID"),
      "network/attach": ActionRecord(status: .done, outcome: .alreadyDone, value: nil, export: nil),
      "security/alb": ActionRecord(
        status: .done, outcome: .adopted, value: "sg-1", export: "SG_ID"),
      "rds/databases": ActionRecord(status: .pendingManual, outcome: nil, value: nil, export: nil),
    ]
    checkpoint.lastFailure = FailureRecord(
      step: "security", action: "ingress", message: "no", at: "2025-01-01T00:00:00.000Z")
    return checkpoint
  }

  func testLoadWithoutAFileIsNil() throws {
    XCTAssertNil(try state.load())
  }

  func testSaveAndLoadRoundTrip() throws {
    let checkpoint = sample()
    try state.save(checkpoint)
    XCTAssertEqual(try state.load(), checkpoint)
  }

  func testSavedFileIsPrivate() throws {
    try state.save(sample())
    XCTAssertEqual(try permissions(of: state.stateFile), 0o600)
    XCTAssertEqual(try permissions(of: state.path), 0o700)
  }

  func testBackupHoldsThePreviousVersion() throws {
    var checkpoint = sample()
    try state.save(checkpoint)
    let first = try XCTUnwrap(contents(of: state.stateFile))
    XCTAssertFalse(FileManager.default.fileExists(atPath: state.backupFile))

    checkpoint.serial += 1
    checkpoint.exports["NAT_ID"] = "nat-1"
    try state.save(checkpoint)
    XCTAssertEqual(contents(of: state.backupFile), first)
    XCTAssertEqual(try permissions(of: state.backupFile), 0o600)
    XCTAssertEqual(try state.load()?.exports["NAT_ID"], "nat-1")

    let previous = try JSONDecoder().decode(Checkpoint.self, from: first)
    XCTAssertEqual(previous.serial, 7)
    XCTAssertNil(previous.exports["NAT_ID"])
    // No temporary file is left behind.
    let names = try FileManager.default.contentsOfDirectory(atPath: state.path)
    XCTAssertEqual(Set(names), ["state.json", "state.json.bak", "logs"])
  }

  func testEveryEngineSaveRaisesTheSerialByOne() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    let step = fixture.twoActionStep()
    _ = try await fixture.engine([step]).run([step])
    let checkpoint = try fixture.checkpoint()
    // One save pins the account, then one per action; the backup is the save before the last.
    XCTAssertEqual(checkpoint.serial, 3)
    let backup = try JSONDecoder().decode(
      Checkpoint.self, from: try XCTUnwrap(contents(of: fixture.state.backupFile)))
    XCTAssertEqual(backup.serial, 2)
    XCTAssertEqual(backup.exports, ["A_ID": "a-1"])
  }

  // MARK: - Files that cannot be used are left exactly as they are

  func assertRefused(
    _ bytes: Data, file: StaticString = #filePath, line: UInt = #line,
    _ check: (CheckpointError) -> Void
  ) throws {
    writeFile(state.stateFile, contents: bytes)
    if let error = assertThrowsNow(
      CheckpointError.self, file: file, line: line, { try state.load() })
    {
      check(error)
      XCTAssertTrue(
        error.description.hasPrefix(state.stateFile), error.description, file: file, line: line)
    }
    XCTAssertEqual(contents(of: state.stateFile), bytes, "the file changed", file: file, line: line)
    XCTAssertFalse(FileManager.default.fileExists(atPath: state.backupFile), file: file, line: line)
  }

  func testTruncatedFilesAreCorruptAndUntouched() throws {
    try state.save(sample())
    let whole = try XCTUnwrap(contents(of: state.stateFile))
    for length in [1, 2, 17, whole.count / 3, whole.count / 2, whole.count - 3] {
      try assertRefused(whole.prefix(length)) { error in
        guard case .corrupt(_, let reason) = error else {
          return XCTFail("\(length) bytes: expected corrupt, got \(error)")
        }
        XCTAssertTrue(reason.contains("invalid JSON"), reason)
      }
    }
  }

  func testEmptyFileIsCorrupt() throws {
    try assertRefused(Data()) { error in
      XCTAssertEqual(error, .corrupt(file: state.stateFile, reason: "the file is empty"))
    }
  }

  func testUnknownFormatVersionIsRefused() throws {
    let encoder = JSONEncoder()
    var object =
      try JSONSerialization.jsonObject(with: try encoder.encode(sample())) as! [String: Any]
    object["formatVersion"] = 2
    try assertRefused(try JSONSerialization.data(withJSONObject: object)) { error in
      XCTAssertEqual(error, .unknownFormat(file: state.stateFile, version: 2))
    }
  }

  func testMissingFieldsAreCorrupt() throws {
    let full =
      try JSONSerialization.jsonObject(with: try JSONEncoder().encode(sample())) as! [String: Any]
    for field in ["lineage", "serial", "deployment", "region", "exports", "actions", "updatedAt"] {
      var object = full
      object[field] = nil
      try assertRefused(try JSONSerialization.data(withJSONObject: object)) { error in
        XCTAssertEqual(
          error,
          .corrupt(file: state.stateFile, reason: "a field is missing or has the wrong type"), field
        )
      }
    }
    var object = full
    object["formatVersion"] = nil
    try assertRefused(try JSONSerialization.data(withJSONObject: object)) { error in
      XCTAssertEqual(error, .corrupt(file: state.stateFile, reason: "no formatVersion field"))
    }
    object = full
    object["serial"] = "seven"
    try assertRefused(try JSONSerialization.data(withJSONObject: object)) { error in
      guard case .corrupt = error else { return XCTFail("expected corrupt, got \(error)") }
    }
  }

  func testEngineRefusesACorruptCheckpointBeforeAnyCall() async throws {
    let fixture = try EngineFixture(test: self)
    try fixture.seedCheckpoint()
    let bytes = try XCTUnwrap(contents(of: fixture.state.stateFile)).dropLast(10)
    writeFile(fixture.state.stateFile, contents: bytes)
    let step = TestStep("s", [createAction("a", export: "A_ID")])
    let error = await assertThrows(CheckpointError.self) {
      try await fixture.engine([step]).run([step])
    }
    guard case .corrupt = error else {
      return XCTFail("expected corrupt, got \(String(describing: error))")
    }
    XCTAssertEqual(fixture.runner.calls, [])
    XCTAssertEqual(contents(of: fixture.state.stateFile), Data(bytes))
  }

  /// A journal with a line in the middle that is not an entry stops the run before any call
  /// and any write; a torn last line does not.
  func testEngineRefusesACorruptJournalBeforeAnyCall() async throws {
    let fixture = try EngineFixture(test: self)
    try fixture.seedCheckpoint()
    let lineage = try XCTUnwrap(try fixture.state.load()).lineage
    try fixture.journal.append(JournalEntry(lineage: lineage, event: .intent, action: "s/a"))
    let handle = try XCTUnwrap(FileHandle(forWritingAtPath: fixture.state.journalFile))
    handle.seekToEndOfFile()
    handle.write(Data("{\"action\":\"s/b\",\"event\":\"int\n".utf8))
    try handle.close()
    try fixture.journal.append(JournalEntry(lineage: lineage, event: .intent, action: "s/c"))
    let before = try XCTUnwrap(contents(of: fixture.state.journalFile))
    let files = try FileManager.default.contentsOfDirectory(atPath: fixture.state.path).sorted()
    let step = TestStep("s", [createAction("a", export: "A_ID")])
    let error = await assertThrows(CheckpointError.self) {
      try await fixture.engine([step]).run([step])
    }
    XCTAssertEqual(
      error,
      .corruptJournal(file: fixture.state.journalFile, line: 2, reason: "invalid JSON in 28 bytes"))
    XCTAssertEqual(fixture.runner.calls, [])
    XCTAssertEqual(contents(of: fixture.state.journalFile), before)
    XCTAssertEqual(
      try FileManager.default.contentsOfDirectory(atPath: fixture.state.path).sorted(), files)
  }

  /// A state directory that cannot be made (a file stands in its way) stops the run before any
  /// call, naming the path.
  func testEngineRefusesAStateDirectoryItCannotMakeBeforeAnyCall() async throws {
    let fixture = try EngineFixture(test: self)
    let file = fixture.folder.appendingPathComponent("a-file").path
    writeFile(file, contents: Data("x".utf8))
    fixture.runner.answerCallerIdentity()
    let step = TestStep("s", [createAction("a", export: "A_ID")])
    for path in [file, file + "/state"] {
      let error = await assertThrows(CheckpointError.self) {
        try await fixture.engine([step], state: StateDirectory(path: path)).run([step])
      }
      XCTAssertEqual(
        error,
        .unwritable(
          path: path,
          reason: path == file ? "a file, not a folder" : "\(file) is a file, not a folder"))
    }
    XCTAssertEqual(fixture.runner.calls, [])
    XCTAssertEqual(contents(of: file), Data("x".utf8))
  }

  // MARK: - forget

  func testForgetRemovesOnlyThatStep() {
    var checkpoint = sample()
    checkpoint.actions["networking/other"] = ActionRecord(
      status: .done, outcome: .created, value: "x-1", export: "OTHER_ID")
    checkpoint.exports["OTHER_ID"] = "x-1"
    checkpoint.forget(step: "network")
    XCTAssertEqual(
      Set(checkpoint.actions.keys), ["security/alb", "rds/databases", "networking/other"])
    XCTAssertEqual(checkpoint.exports, ["SG_ID": "sg-1", "OTHER_ID": "x-1"])
    XCTAssertNotNil(checkpoint.lastFailure, "the failure belongs to another step")

    checkpoint.forget(step: "security")
    XCTAssertEqual(Set(checkpoint.actions.keys), ["rds/databases", "networking/other"])
    XCTAssertEqual(checkpoint.exports, ["OTHER_ID": "x-1"])
    XCTAssertNil(checkpoint.lastFailure)
    XCTAssertEqual(checkpoint.lineage, "lin-1")
    XCTAssertEqual(checkpoint.account, "123456789012")
  }
}
