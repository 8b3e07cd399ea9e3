import Foundation
import RunbookProcess
import RunbookAWS
import RunbookState
import RunbookEngine
import UniSyncRunbook
import RunbookCLI
import XCTest

/// `runbook-health-probe`, the program verify runs for its GET: built beside the runbook binary,
/// printing the one line that ``HealthProbe/answer(fromOutput:)`` reads. Needs no emulator: a
/// health server on 127.0.0.1 (up, down or silent) answers it.
final class HealthProbeProgramTests: XCTestCase {
  /// The program beside the runbook binary the tests run, as the tool itself finds it.
  func program() throws -> String {
    let directory = URL(fileURLWithPath: try Workspace.binary()).deletingLastPathComponent().path
    guard let path = HealthProbe.programPath(besides: directory, path: "") else {
      throw HarnessError.missing(
        "\(HealthProbe.tool) is not built beside \(try Workspace.binary()) (run 'swift build')")
    }
    return path
  }

  func probe(_ arguments: [String]) async throws -> ProcessOutput {
    try await ProcessRunner().run(Invocation(executable: try program(), arguments: arguments))
  }

  func testAnHTTPAnswerOfAnyStatusIsOneLineExitZero() async throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
      "runbook-probe-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }

    let up = try HealthServer(.up, in: folder)
    let upRun = try await probe(["--timeout", "5", up.url])
    XCTAssertEqual(upRun.termination, .exited(HealthProbe.Exit.answered), upRun.stderrText)
    XCTAssertEqual(upRun.stdoutText.filter { $0 == "\n" }.count, 1, upRun.stdoutText)
    let answer = try XCTUnwrap(HealthProbe.answer(fromOutput: upRun.stdoutText), upRun.stdoutText)
    XCTAssertEqual(answer.status, 200)
    XCTAssertEqual(answer.excerpt, #"{"status":"UP","groups":["liveness","readiness"]}"#)
    XCTAssertTrue(answer.isUp)
    XCTAssertLessThan(answer.milliseconds, 5000)
    XCTAssertEqual(up.requests, ["/actuator/health"], "one GET")

    let down = try HealthServer(.down, in: folder)
    let downRun = try await probe(["--timeout", "5", down.url])
    XCTAssertEqual(downRun.termination, .exited(HealthProbe.Exit.answered), downRun.stderrText)
    let downAnswer = try XCTUnwrap(HealthProbe.answer(fromOutput: downRun.stdoutText))
    XCTAssertEqual(downAnswer.status, 503)
    XCTAssertEqual(downAnswer.excerpt, #"{"status":"DOWN"}"#)
    XCTAssertFalse(downAnswer.isUp)
  }

  func testNoAnswerSaysWhyWithinTheTimeout() async throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
      "runbook-probe-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }

    let silent = try HealthServer(.hang, in: folder)
    let started = Date()
    let hung = try await probe(["--timeout", "1", silent.url])
    XCTAssertLessThan(Date().timeIntervalSince(started), 4, "bounded by the timeout")
    XCTAssertEqual(hung.termination, .exited(HealthProbe.Exit.noAnswer), hung.stdoutText)
    XCTAssertEqual(HealthProbe.answer(fromOutput: hung.stdoutText)?.excerpt, "timed out")
    XCTAssertNil(HealthProbe.answer(fromOutput: hung.stdoutText)?.status)

    // A port nobody listens on: the server's port once it is gone.
    var port = 0
    do {
      let gone = try HealthServer(.up, in: folder)
      port = gone.port
    }
    let refused = try await probe(["--timeout", "2", "http://127.0.0.1:\(port)/actuator/health"])
    XCTAssertEqual(refused.termination, .exited(HealthProbe.Exit.noAnswer), refused.stdoutText)
    XCTAssertEqual(
      HealthProbe.answer(fromOutput: refused.stdoutText)?.excerpt, "connection refused",
      refused.stdoutText)
  }

  func testBadArgumentsAreAUsageErrorWithNothingFetched() async throws {
    for arguments in [
      [], ["ftp://127.0.0.1/x"], ["--timeout", "0", "http://127.0.0.1/"],
      ["--timeout", "soon", "http://127.0.0.1/"], ["--timeout"],
      ["--verbose", "http://127.0.0.1/"],
      ["http://127.0.0.1/a", "http://127.0.0.1/b"], ["not a url"],
    ] {
      let run = try await probe(arguments)
      XCTAssertEqual(run.termination, .exited(HealthProbe.Exit.usage), "\(arguments)")
      XCTAssertEqual(run.stdoutText, "", "\(arguments)")
      XCTAssertTrue(
        run.stderrText.contains("usage: runbook-health-probe [--timeout SECONDS] URL"),
        "\(arguments): \(run.stderrText)")
    }
  }
}
