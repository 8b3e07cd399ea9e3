import Foundation
import RunbookProcess
import RunbookAWS
import RunbookState
import RunbookEngine
import UniSyncRunbook
import RunbookCLI
import Synchronization
import XCTest

/// A ``CommandRunner`` that starts no process: it records every invocation and answers from rules.
///
/// A rule matches when its words are a prefix of the argv (`[executable] + arguments`); the longest
/// matching prefix wins, ties go to the rule added first. A rule gives its replies in order, then
/// repeats the last one (unless told not to). A call that no rule answers fails the test that
/// created the runner and gets exit status 99, so the code under test stops too.
final class ScriptedRunner: CommandRunner {
  /// What one scripted process "printed" and how it ended.
  struct Reply: Sendable {
    var stdout: String
    var stderr: String
    var termination: Termination

    init(stdout: String = "", stderr: String = "", termination: Termination = .exited(0)) {
      self.stdout = stdout
      self.stderr = stderr
      self.termination = termination
    }

    /// A success printing `stdout` (aws's `--output text` ends with a newline).
    static func ok(_ stdout: String = "") -> Reply {
      Reply(stdout: stdout.isEmpty || stdout.hasSuffix("\n") ? stdout : stdout + "\n")
    }

    /// A failure with aws CLI v1's exit status and this standard error.
    static func failure(_ stderr: String, status: Int32 = 255) -> Reply {
      Reply(stderr: "\n" + stderr + "\n", termination: .exited(status))
    }

    /// An AWS error as aws-cli v1 reports it (exit status 255).
    static func awsError(_ code: String, operation: String, message: String) -> Reply {
      failure("An error occurred (\(code)) when calling the \(operation) operation: \(message)")
    }

    var output: ProcessOutput {
      ProcessOutput(
        termination: termination, standardOutput: Data(stdout.utf8),
        standardError: Data(stderr.utf8))
    }
  }

  /// Computes a reply from the invocation (may wait, inspect files, count...).
  typealias Responder = @Sendable (Invocation) async -> Reply

  /// One recorded process start.
  struct Call: Sendable, Hashable, CustomStringConvertible {
    var argv: [String]
    var standardInput: Data?
    var stdinText: String? { standardInput.map { String(decoding: $0, as: UTF8.self) } }
    var description: String { argv.joined(separator: " ") }

    func starts(with prefix: [String]) -> Bool { argv.starts(with: prefix) }
    /// The value following `option` in the argv.
    func value(of option: String) -> String? {
      guard let index = argv.firstIndex(of: option), index + 1 < argv.count else { return nil }
      return argv[index + 1]
    }
  }

  private struct Rule {
    var prefix: [String]
    var replies: [Responder]
    var repeatsLast: Bool
    var used = 0
    var exhausted: Bool { !repeatsLast && used >= replies.count }
  }

  private struct State {
    var rules: [Rule] = []
    var calls: [Call] = []
    var unexpected: [Call] = []
  }

  private let state = Mutex(State())
  private let file: StaticString
  private let line: UInt

  /// - Parameters: `file`/`line` locate the test that an unexpected call fails.
  init(file: StaticString = #filePath, line: UInt = #line) {
    self.file = file
    self.line = line
  }

  // MARK: - Rules

  /// Answers calls starting with `prefix` with `replies` in order, then the last one again.
  func on(_ prefix: String..., reply replies: Reply..., repeatLast: Bool = true) {
    on(prefix, replies: replies, repeatLast: repeatLast)
  }

  func on(_ prefix: [String], replies: [Reply], repeatLast: Bool = true) {
    precondition(!replies.isEmpty, "a rule needs at least one reply")
    on(prefix, responders: replies.map { reply in { _ in reply } }, repeatLast: repeatLast)
  }

  /// Answers calls starting with `prefix` with whatever `respond` computes, every time.
  func on(_ prefix: String..., respond: @escaping Responder) {
    on(prefix, responders: [respond], repeatLast: true)
  }

  func on(_ prefix: [String], respond: @escaping Responder) {
    on(prefix, responders: [respond], repeatLast: true)
  }

  func on(_ prefix: [String], responders: [Responder], repeatLast: Bool) {
    state.withLock {
      $0.rules.append(Rule(prefix: prefix, replies: responders, repeatsLast: repeatLast))
    }
  }

  /// The preflight of every run: the account (`sts get-caller-identity`) and, when actions left
  /// use docker, the daemon's version.
  func answerCallerIdentity(_ account: String = "123456789012") {
    on("aws", "sts", "get-caller-identity", reply: .ok(account))
    on("docker", "version", reply: .ok("27.5.1"))
  }

  // MARK: - What happened

  /// Every invocation, in the order they started (pipelines: producer, then consumer).
  var calls: [Call] { state.withLock { $0.calls } }
  /// Invocations no rule answered.
  var unexpected: [Call] { state.withLock { $0.unexpected } }

  /// The invocations whose argv starts with these words.
  func calls(_ prefix: String...) -> [Call] { calls.filter { $0.starts(with: prefix) } }

  /// The invocations other than the preflight every run starts with.
  var callsAfterIdentity: [Call] {
    calls.filter {
      !$0.starts(with: ["aws", "sts", "get-caller-identity"])
        && !$0.starts(with: ["docker", "version"])
    }
  }

  // MARK: - CommandRunner

  func run(_ invocation: Invocation) async throws -> ProcessOutput {
    let call = Call(
      argv: [invocation.executable] + invocation.arguments,
      standardInput: invocation.standardInput)
    let responder: Responder? = state.withLock { state in
      state.calls.append(call)
      let candidates = state.rules.indices.filter {
        call.starts(with: state.rules[$0].prefix) && !state.rules[$0].exhausted
      }
      guard
        let chosen = candidates.max(by: {
          // Longest prefix wins; on a tie the earlier rule does (max keeps the last maximum).
          (state.rules[$0].prefix.count, $1) < (state.rules[$1].prefix.count, $0)
        })
      else {
        state.unexpected.append(call)
        return nil
      }
      let rule = state.rules[chosen]
      state.rules[chosen].used += 1
      return rule.replies[min(rule.used, rule.replies.count - 1)]
    }
    guard let responder else {
      XCTFail("unexpected command: \(call)", file: file, line: line)
      return Reply(stderr: "ScriptedRunner: no rule answers \(call)\n", termination: .exited(99))
        .output
    }
    return await responder(invocation).output
  }

  func runPipeline(_ producer: Invocation, into consumer: Invocation) async throws
    -> PipelineOutput
  {
    let produced = try await run(producer)
    var fed = consumer
    fed.standardInput = produced.standardOutput
    let consumed = try await run(fed)
    // Like the real runner, the producer's output only went into the pipe.
    var producerResult = produced
    producerResult.standardOutput = Data()
    return PipelineOutput(producer: producerResult, consumer: consumed)
  }
}
