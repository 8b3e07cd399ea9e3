import Foundation
import Synchronization
import XCTest

@testable import RunbookAWS
@testable import RunbookCLI
@testable import RunbookEngine
@testable import RunbookProcess
@testable import RunbookState
@testable import UniSyncRunbook

#if canImport(Glibc)
  import Glibc
#endif

/// The package's root folder (three levels above this file).
let packageRoot: URL = URL(fileURLWithPath: #filePath)
  .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
  .deletingLastPathComponent()

/// The shipped configuration for the local emulator.
var localConfigurationPath: String {
  packageRoot.appendingPathComponent("runbooks/local.json").path
}

/// The deployment of `runbooks/local.json`.
func localDeployment() throws -> Deployment { try Deployment.load(from: localConfigurationPath) }

extension XCTestCase {
  /// A fresh folder, removed when the test ends.
  func makeScratchFolder() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent(
      "runbook-unit-\(UUID().uuidString.prefix(12))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
  }
}

/// A PATH holding stand-ins for the tools steps run (`aws`, `docker`, `zip`, the health probe), so the engine's
/// "is it installed?" check passes on any machine. They are never meant to run: the scripted runner
/// answers instead, and each stand-in fails loudly if something starts it anyway.
let stubToolPath: String = {
  // One folder for every test process (each test runs in a process of its own): filled under a
  // name of this process's, then renamed into place in one step; the first rename wins.
  let temporary = FileManager.default.temporaryDirectory
  let shared = temporary.appendingPathComponent("runbook-unit-tools-\(getuid())").path
  let tools = ["aws", "docker", "zip", HealthProbe.tool]
  if tools.allSatisfy({ FileManager.default.isExecutableFile(atPath: shared + "/" + $0) }) {
    return shared
  }
  let mine = temporary.appendingPathComponent("runbook-unit-tools-\(getuid())-\(getpid())").path
  try? FileManager.default.createDirectory(atPath: mine, withIntermediateDirectories: true)
  for tool in tools {
    _ = FileManager.default.createFile(
      atPath: mine + "/" + tool,
      contents: Data("#!/bin/sh\necho \"unit tests never run $0\" >&2\nexit 97\n".utf8),
      attributes: [.posixPermissions: 0o755])
  }
  if rename(mine, shared) != 0 {
    try? FileManager.default.removeItem(atPath: mine)
  }
  return shared
}()

/// The permission bits of a file or folder.
func permissions(of path: String) throws -> Int {
  var info = stat()
  guard stat(path, &info) == 0 else {
    throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: path])
  }
  return Int(info.st_mode & 0o777)
}

/// Creates or replaces a file with these bytes (fails the test when it cannot).
func writeFile(_ path: String, contents: Data, file: StaticString = #filePath, line: UInt = #line) {
  XCTAssertTrue(
    FileManager.default.createFile(atPath: path, contents: contents), "cannot write \(path)",
    file: file, line: line)
}

/// The bytes of a file, or nil when it does not exist.
func contents(of path: String) -> Data? { FileManager.default.contents(atPath: path) }

/// A step made of the given actions, for engine tests.
struct TestStep: Step {
  var id: String
  var section: String = "9.9"
  var title: String = "test step"
  var list: [Action]
  var secrets: [SecretInput] = []

  init(_ id: String, _ list: [Action], secrets: [SecretInput] = []) {
    self.id = id
    self.list = list
    self.secrets = secrets
  }

  func actions(for deployment: Deployment) -> [Action] { list }
  func secretInputs(for deployment: Deployment) -> [SecretInput] { secrets }
}

/// A write that runs `aws test create-<name> ARGS...` and captures `<prefix>-<digits>` into `export`.
func createAction(
  _ name: String, export: String?, prefix: String? = nil, arguments: [Argument] = [],
  lookup: Bool = false, after: [String] = []
) -> Action {
  let prefix = prefix ?? name
  return Action.create(
    name, "create \(name)", export: export, pattern: "^\(prefix)-[0-9]+$",
    command: .aws(["test", "create-\(name)"] + arguments),
    lookup: lookup ? .aws("test", "describe-\(name)", "--query", "Ids", "--output", "text") : nil,
    after: after)
}

/// Records every event the engine reports.
final class RecordingReporter: Reporter {
  private let events = Mutex<[RunEvent]>([])
  func report(_ event: RunEvent) { events.withLock { $0.append(event) } }
  var all: [RunEvent] { events.withLock { $0 } }

  var retries: [(action: String, reason: String)] {
    all.compactMap {
      if case .retrying(_, let action, let reason, _, _) = $0 { (action, reason) } else { nil }
    }
  }
  var warnings: [String] {
    all.compactMap { if case .warning(let text) = $0 { text } else { nil } }
  }
  var notes: [String] {
    all.compactMap { if case .note(let text) = $0 { text } else { nil } }
  }
}

/// A prompter answering from a script; every question is recorded, and one too many fails the test.
final class ScriptedPrompter: Prompter {
  struct Question: Sendable, Hashable {
    var step: String
    var action: String
    var command: String
  }

  private let approvals: Mutex<[Approval]>
  private let manualAnswers: Mutex<[Bool]>
  private let secretAnswers: Mutex<[String]>
  private let asked = Mutex<[Question]>([])
  private let manualAsked = Mutex<[String]>([])
  private let secretsAsked = Mutex<[String]>([])

  init(approvals: [Approval] = [], manual: [Bool] = [], secrets: [String] = []) {
    self.approvals = Mutex(approvals)
    self.manualAnswers = Mutex(manual)
    self.secretAnswers = Mutex(secrets)
  }

  var questions: [Question] { asked.withLock { $0 } }
  var manualQuestions: [String] { manualAsked.withLock { $0 } }
  var secretQuestions: [String] { secretsAsked.withLock { $0 } }
  var consulted: Bool { !questions.isEmpty || !manualQuestions.isEmpty || !secretQuestions.isEmpty }

  func approve(step: String, action: String, summary: String, command: String) -> Approval {
    asked.withLock { $0.append(Question(step: step, action: action, command: command)) }
    guard let answer = approvals.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else {
      XCTFail("unexpected approval question for \(step)/\(action)")
      return .quit
    }
    return answer
  }

  func confirmManual(step: String, action: String, instructions: String) -> Bool {
    manualAsked.withLock { $0.append("\(step)/\(action)") }
    guard let answer = manualAnswers.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else {
      XCTFail("unexpected manual confirmation for \(step)/\(action)")
      return false
    }
    return answer
  }

  func secret(prompt: String) -> String? {
    secretsAsked.withLock { $0.append(prompt) }
    return secretAnswers.withLock { $0.isEmpty ? nil : $0.removeFirst() }
  }
}

/// A state directory in a scratch folder, a scripted runner and the local deployment, ready to
/// build engines for test steps.
struct EngineFixture {
  let folder: URL
  let state: StateDirectory
  var deployment: Deployment
  let runner: ScriptedRunner
  let reporter = RecordingReporter()

  init(test: XCTestCase, file: StaticString = #filePath, line: UInt = #line) throws {
    folder = try test.makeScratchFolder()
    state = StateDirectory(path: folder.appendingPathComponent("state").path)
    deployment = try localDeployment()
    runner = ScriptedRunner(file: file, line: line)
  }

  /// A step of two writes: `a` (→ A_ID), then `b` (→ B_ID), with the runner answering both.
  func twoActionStep() -> TestStep {
    runner.on("aws", "test", "create-a", reply: .ok("a-1"))
    runner.on("aws", "test", "create-b", reply: .ok("b-1"))
    return TestStep(
      "s", [createAction("a", export: "A_ID"), createAction("b", export: "B_ID", after: ["a"])])
  }

  /// Tiny retry delays so throttling tests take milliseconds.
  static let fastRetry = RetryPolicy(
    attempts: 4, baseDelaySeconds: 0.001, maxDelaySeconds: 0.002, notVisibleYetSeconds: 0.5,
    notVisibleYetFirstDelaySeconds: 0.001)

  func engine(
    _ steps: [any GuideStep], catalogue: [any GuideStep]? = nil, prompter: (any Prompter)? = nil,
    yes: Bool = true, jobs: Int = 4, environment: [String: String] = [:],
    secrets: SecretStore = SecretStore(), region: String? = nil, runner: ScriptedRunner? = nil,
    state: StateDirectory? = nil, refresh: Bool = false, adopt: Bool = false
  ) -> Engine<Deployment> {
    var options = RunOptions(
      assumeYes: yes, adopt: adopt, jobs: jobs, commandLine: "runbook test", retry: Self.fastRetry)
    options.refresh = refresh
    return Engine(
      deployment: deployment, state: state ?? self.state, catalogue: catalogue ?? steps,
      runner: runner ?? self.runner, reporter: reporter, prompter: prompter,
      aws: AWSSettings(region: region ?? deployment.region), secrets: secrets,
      options: options,
      environment: ["PATH": stubToolPath].merging(environment) { _, given in given })
  }

  /// The checkpoint on disk (fails the test when there is none).
  func checkpoint(file: StaticString = #filePath, line: UInt = #line) throws -> Checkpoint {
    try XCTUnwrap(try state.load(), "no checkpoint was written", file: file, line: line)
  }

  /// Writes a checkpoint for this deployment (pinned to `account`) before a run.
  @discardableResult
  func seedCheckpoint(
    account: String? = "123456789012", region: String? = nil,
    _ edit: (inout Checkpoint) -> Void = { _ in }
  ) throws -> Checkpoint {
    try state.prepare()
    var checkpoint = Checkpoint(deployment: deployment.name, region: region ?? deployment.region)
    checkpoint.account = account
    edit(&checkpoint)
    try state.save(checkpoint)
    return checkpoint
  }

  var journal: Journal { Journal(path: state.journalFile) }
}

/// Waits until `condition` holds, looking every 10 ms; throws after `seconds` (a bound for a
/// machine under load: only a failing test waits that long).
func waitFor(
  _ what: String, seconds: Double = 60, _ condition: @escaping @Sendable () -> Bool
) async throws {
  let deadline = Date().addingTimeInterval(seconds)
  while !condition() {
    guard Date() < deadline else { throw DeadlineExceeded(seconds: seconds, what: what) }
    try await Task.sleep(nanoseconds: 10_000_000)
  }
}

/// Runs `body`, failing if it has not finished after `seconds` (so a deadlock fails the test
/// instead of hanging the suite). The body is left running when it times out.
func withDeadline<T: Sendable>(
  _ seconds: Double, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
  let slot = Locked<CheckedContinuation<T, any Error>?>(nil)
  return try await withCheckedThrowingContinuation { continuation in
    slot.withLock { $0 = continuation }
    let task = Task {
      let result: Result<T, any Error>
      do { result = .success(try await body()) } catch { result = .failure(error) }
      slot.withLock { $0.take() }?.resume(with: result)
    }
    DispatchQueue.global().asyncAfter(deadline: .now() + seconds) {
      if let continuation = slot.withLock({ $0.take() }) {
        task.cancel()
        continuation.resume(throwing: DeadlineExceeded(seconds: seconds))
      }
    }
  }
}

/// A value shared between tasks and closures.
final class Locked<Value>: @unchecked Sendable {
  private let lock = NSLock()
  private var stored: Value
  init(_ value: Value) { stored = value }
  func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
    lock.lock()
    defer { lock.unlock() }
    return try body(&stored)
  }
  var value: Value { withLock { $0 } }
}

struct DeadlineExceeded: Error, CustomStringConvertible {
  var seconds: Double
  var what: String? = nil
  var description: String {
    what.map { "\($0): not within \(seconds) s" } ?? "did not finish within \(seconds) s"
  }
}

/// Asserts that `body` throws an error of type `E` and returns it.
func assertThrows<E: Error, T>(
  _ errorType: E.Type, file: StaticString = #filePath, line: UInt = #line,
  _ body: () async throws -> T
) async -> E? {
  do {
    let value = try await body()
    XCTFail("expected \(E.self), got \(value)", file: file, line: line)
  } catch let error as E {
    return error
  } catch {
    XCTFail("expected \(E.self), got \(type(of: error)): \(error)", file: file, line: line)
  }
  return nil
}

/// The synchronous form of `assertThrows`.
func assertThrowsNow<E: Error, T>(
  _ errorType: E.Type, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> T
) -> E? {
  do {
    let value = try body()
    XCTFail("expected \(E.self), got \(value)", file: file, line: line)
  } catch let error as E {
    return error
  } catch {
    XCTFail("expected \(E.self), got \(type(of: error)): \(error)", file: file, line: line)
  }
  return nil
}
