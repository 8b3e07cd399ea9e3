import Foundation

/// One process to start: an executable found on PATH, its arguments and what it reads.
///
/// This is the resolved, concrete form of a ``Command``: every export is filled in, every secret
/// has been turned into a temporary file or standard input. It never passes through a shell.
public struct Invocation: Sendable, Hashable {
  /// A bare name (`aws`) looked up on PATH, or a path containing `/`.
  public var executable: String
  public var arguments: [String]
  /// Bytes written to the child's standard input, then closed; `nil` gives the child /dev/null.
  public var standardInput: Data?
  /// Variables laid over the inherited environment (never a replacement for it).
  public var environment: [String: String]
  public var workingDirectory: String?

  public init(
    executable: String, arguments: [String], standardInput: Data? = nil,
    environment: [String: String] = [:], workingDirectory: String? = nil
  ) {
    self.executable = executable
    self.arguments = arguments
    self.standardInput = standardInput
    self.environment = environment
    self.workingDirectory = workingDirectory
  }
}

/// How a child process ended.
public enum Termination: Sendable, Hashable, CustomStringConvertible {
  case exited(Int32)
  case signaled(Int32)

  public var description: String {
    switch self {
    case .exited(let code): "exit status \(code)"
    case .signaled(let signal): "killed by signal \(signal)"
    }
  }
}

/// Everything a finished child produced.
public struct ProcessOutput: Sendable, Hashable {
  public var termination: Termination
  public var standardOutput: Data
  public var standardError: Data

  public init(termination: Termination, standardOutput: Data, standardError: Data) {
    self.termination = termination
    self.standardOutput = standardOutput
    self.standardError = standardError
  }

  public var succeeded: Bool { termination == .exited(0) }
  public var stdoutText: String { String(decoding: standardOutput, as: UTF8.self) }
  public var stderrText: String { String(decoding: standardError, as: UTF8.self) }
}

/// The one seam between the tool and the outside world.
///
/// The real implementation starts processes; tests use a scripted one; `plan` never reaches a runner.
public protocol CommandRunner: Sendable {
  /// Runs one process to completion, draining its output.
  func run(_ invocation: Invocation) async throws -> ProcessOutput

  /// Runs `producer | consumer` with a pipe between them and no shell.
  ///
  /// The producer's standard output goes only into the pipe (it is never collected, so a token
  /// passed this way is never held by the tool). The result carries the consumer's standard output,
  /// both standard errors, and the termination of each.
  func runPipeline(_ producer: Invocation, into consumer: Invocation) async throws -> PipelineOutput
}

/// The result of a two-process pipeline.
public struct PipelineOutput: Sendable, Hashable {
  public var producer: ProcessOutput
  public var consumer: ProcessOutput

  public init(producer: ProcessOutput, consumer: ProcessOutput) {
    self.producer = producer
    self.consumer = consumer
  }

  public var succeeded: Bool { producer.succeeded && consumer.succeeded }
}

/// Why a process could not be started at all.
public enum ProcessLaunchError: Error, Sendable, Hashable, CustomStringConvertible {
  case executableNotFound(String)
  case launchFailed(String, reason: String)

  public var description: String {
    switch self {
    case .executableNotFound(let name):
      "could not find executable '\(name)' on PATH"
    case .launchFailed(let name, let reason):
      "could not start '\(name)': \(reason)"
    }
  }
}
