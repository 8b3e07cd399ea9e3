import Foundation

/// How to read what the tools print, for code that runs commands without knowing any tool (the
/// engine): the error code of a failure, whether it means "slow down", a reason for people, a
/// request id. The aws CLI's is ``AWSCLIDialect`` in the AWS layer.
package protocol OutputDialect: Sendable {
  /// What an error code is called when shown (`AWS error`).
  var errorCodeLabel: String { get }
  /// The error code in a failed command's standard error (`InvalidSubnet.Conflict`), if any.
  func errorCode(in stderr: String) -> String?
  /// Whether the error code means the service asks to slow down (retried with back-off).
  func isThrottling(_ code: String) -> Bool
  /// Whether the error code can mean "not visible yet" for a resource created a moment ago
  /// (eventual consistency): retried with back-off while the command names such a resource.
  func isNotVisibleYet(_ code: String) -> Bool
  /// A failed command's error output as a reason for people.
  func explain(_ stderr: String) -> String
  /// The request id in a command's output, for the audit log.
  func requestID(in text: String) -> String?
}

/// Output with no error codes: failures are their error output as it is.
package struct PlainOutputDialect: OutputDialect {
  package init() {}
  package var errorCodeLabel: String { "error code" }
  package func errorCode(in stderr: String) -> String? { nil }
  package func isThrottling(_ code: String) -> Bool { false }
  package func isNotVisibleYet(_ code: String) -> Bool { false }
  package func explain(_ stderr: String) -> String {
    let text = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
    return text.isEmpty ? "no error output" : text
  }
  package func requestID(in text: String) -> String? { nil }
}
