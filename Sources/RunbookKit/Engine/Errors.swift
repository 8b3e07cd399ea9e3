import Foundation

/// A command that could not be used as given (unknown step, missing prerequisite, ...).
public struct UsageError: Error, Sendable, Hashable, CustomStringConvertible {
  public var message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}

/// A step stopped; everything finished before it is kept and a rerun resumes.
public struct StepFailure: Error, Sendable, Hashable, CustomStringConvertible {
  public var step: String
  public var action: String
  /// The command, with exports filled in and secrets masked.
  public var command: String
  public var termination: Termination?
  /// The AWS error code (`InvalidSubnet.Conflict`), when the CLI printed one.
  public var awsErrorCode: String?
  /// The reason, secrets masked.
  public var reason: String

  public var description: String {
    var lines = ["step '\(step)' failed at action '\(action)'"]
    lines.append("  command: \(command)")
    if let termination { lines.append("  \(termination)") }
    if let awsErrorCode { lines.append("  AWS error: \(awsErrorCode)") }
    lines.append(contentsOf: reason.split(separator: "\n").prefix(12).map { "  \($0)" })
    lines.append(
      "  fix the cause and run again: finished actions are kept and the run resumes here")
    return lines.joined(separator: "\n")
  }
}

/// The run was stopped by the operator (Ctrl-C, SIGTERM, or [q]uit at a prompt).
public struct Interrupted: Error, Sendable, Hashable, CustomStringConvertible {
  public var reason: String
  public init(_ reason: String) { self.reason = reason }
  public var description: String {
    "interrupted (\(reason)); the checkpoint is saved, and 'run' resumes from here"
  }
}

/// Reads the error code from the aws CLI's standard error (`An error occurred (Code) when ...`).
public func awsErrorCode(in stderr: String) -> String? {
  guard let open = stderr.range(of: "An error occurred ("),
    let close = stderr[open.upperBound...].firstIndex(of: ")")
  else { return nil }
  return String(stderr[open.upperBound..<close])
}

/// Error codes that mean "slow down"; retried with jittered exponential backoff.
public let throttlingErrorCodes: Set<String> = [
  "Throttling", "ThrottlingException", "ThrottledException", "RequestLimitExceeded",
  "TooManyRequestsException", "RequestThrottled", "RequestThrottledException",
  "SlowDown", "PriorRequestNotComplete", "ProvisionedThroughputExceededException",
]

/// The aws CLI's error output as a reason for people: connection failures are named as such.
public func explainAWSFailure(_ stderr: String) -> String {
  let text = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
  if text.isEmpty { return "no error output" }
  if text.contains("Could not connect to the endpoint URL")
    || text.contains("Connect timeout on endpoint URL")
  {
    return "AWS could not be reached (check the network, --endpoint-url and --region): " + text
  }
  return text
}
