import Foundation
import XCTest

@testable import RunbookProcess
@testable import RunbookAWS
@testable import RunbookState
@testable import RunbookEngine
@testable import UniSyncRunbook
@testable import RunbookCLI

#if canImport(Glibc)
  import Glibc
#endif

/// The state directory's lock: one run at a time, and a dead run's lock is taken over.
final class LockTests: XCTestCase {
  var state: StateDirectory!

  override func setUpWithError() throws {
    state = StateDirectory(path: try makeScratchFolder().appendingPathComponent("state").path)
    try state.prepare()
  }

  func testSecondLockInTheSameProcessIsRefused() throws {
    // flock conflicts between two open file descriptions, even in one process.
    let first = try state.lock(command: "runbook run network")
    defer { first.release() }
    let error = assertThrowsNow(LockHeldError.self) { try state.lock(command: "runbook run") }
    XCTAssertEqual(error?.holder?.pid, getpid())
    XCTAssertEqual(error?.holder?.command, "runbook run network")
    XCTAssertEqual(error?.path, state.lockFile)
    XCTAssertTrue(error?.description.contains("pid \(getpid())") ?? false)
    XCTAssertEqual(state.lockHolder()?.pid, getpid())
  }

  func testLockHeldByAnotherProcessNamesItsPid() throws {
    let holder = try LockHolderProcess(lockFile: state.lockFile)
    defer { holder.stop() }
    let error = assertThrowsNow(LockHeldError.self) { try state.lock(command: "runbook run") }
    XCTAssertEqual(error?.holder?.pid, holder.pid)
    XCTAssertEqual(error?.holder?.command, "runbook run rds")
    XCTAssertTrue(
      error?.description.contains("pid \(holder.pid)") ?? false, error?.description ?? "")
    XCTAssertEqual(state.lockHolder()?.pid, holder.pid)

    holder.stop()
    // The holder is gone: its record stays in the file, and the next lock takes it over.
    let lock = try state.lock(command: "runbook run")
    defer { lock.release() }
    XCTAssertEqual(lock.previous?.pid, holder.pid)
  }

  func testRecordOfADeadProcessIsTakenOverAndReported() throws {
    let dead = try deadPid()
    let record = LockRecord(
      pid: dead, host: "old-host", startedAt: "2025-01-01T00:00:00.000Z", command: "runbook run")
    writeFile(state.lockFile, contents: try JSONEncoder().encode(record))
    XCTAssertNil(state.lockHolder(), "nobody holds the flock")

    let lock = try state.lock(command: "runbook run network")
    XCTAssertEqual(lock.previous, record)
    XCTAssertEqual(state.lockHolder()?.pid, getpid())
    XCTAssertEqual(state.lockHolder()?.command, "runbook run network")
    lock.release()
  }

  func testReleaseClearsTheRecord() throws {
    let lock = try state.lock(command: "runbook run")
    XCTAssertNotEqual(contents(of: state.lockFile)?.count ?? 0, 0)
    lock.release()
    XCTAssertEqual(contents(of: state.lockFile), Data())
    XCTAssertNil(state.lockHolder())
    let again = try state.lock(command: "runbook run")
    defer { again.release() }
    XCTAssertNil(again.previous, "a released lock is not reported as taken over")
  }

  func testEngineRunRefusesWhileLockedAndMakesNoCall() async throws {
    let fixture = try EngineFixture(test: self)
    try fixture.state.prepare()
    let held = try fixture.state.lock(command: "runbook run other")
    defer { held.release() }
    let step = TestStep("s", [createAction("a", export: "A_ID")])
    let error = await assertThrows(LockHeldError.self) {
      try await fixture.engine([step]).run([step])
    }
    XCTAssertEqual(error?.holder?.command, "runbook run other")
    XCTAssertEqual(fixture.runner.calls, [])
  }

  func testEngineWarnsWhenItTakesOverADeadRunsLock() async throws {
    let fixture = try EngineFixture(test: self)
    try fixture.state.prepare()
    let dead = try deadPid()
    let record = LockRecord(pid: dead, host: "h", startedAt: "then", command: "runbook run")
    writeFile(fixture.state.lockFile, contents: try JSONEncoder().encode(record))
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test", "create-a", reply: .ok("a-1"))
    let step = TestStep("s", [createAction("a", export: "A_ID")])
    _ = try await fixture.engine([step]).run([step])
    XCTAssertTrue(
      fixture.reporter.warnings.contains { $0.contains("pid \(dead)") },
      "\(fixture.reporter.warnings)")
    XCTAssertEqual(contents(of: fixture.state.lockFile), Data(), "released at the end of the run")
  }
}

/// The pid of a process that has exited and been reaped.
func deadPid() throws -> Int32 {
  let process = Process()
  process.executableURL = URL(fileURLWithPath: "/bin/true")
  try process.run()
  process.waitUntilExit()
  return process.processIdentifier
}

/// A python3 child that takes the flock and writes its own lock record, holding both until stopped.
final class LockHolderProcess {
  let process = Process()
  private let input = Pipe()
  private let output = Pipe()

  var pid: Int32 { process.processIdentifier }

  init(lockFile: String) throws {
    let script = """
      import fcntl, json, os, sys
      f = open(sys.argv[1], "a+")
      fcntl.flock(f, fcntl.LOCK_EX)
      f.truncate(0)
      f.write(json.dumps({"pid": os.getpid(), "host": "elsewhere", "startedAt": "now", "command": "runbook run rds"}))
      f.flush()
      print("ready", flush=True)
      sys.stdin.read()
      """
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script, lockFile]
    process.standardInput = input
    process.standardOutput = output
    try process.run()
    let line = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
    guard line.hasPrefix("ready") else {
      stop()
      throw CocoaError(
        .fileReadUnknown,
        userInfo: [NSLocalizedDescriptionKey: "lock holder did not start: \(line)"])
    }
  }

  /// Closes its standard input and waits for it to exit (the flock goes with it).
  func stop() {
    guard process.isRunning else { return }
    try? input.fileHandleForWriting.close()
    process.waitUntilExit()
  }
}
