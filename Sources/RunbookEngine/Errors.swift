import Foundation
import RunbookProcess
import RunbookState

/// A step stopped; everything finished before it is kept and a rerun resumes.
package struct StepFailure: Error, Sendable, Hashable, CustomStringConvertible {
  package var step: String
  package var action: String
  /// The command, with exports filled in and secrets masked.
  package var command: String
  package var termination: Termination?
  /// The error code the command printed (`InvalidSubnet.Conflict`), when it printed one.
  package var errorCode: String?
  /// What the error code is called when shown (`AWS error`: the ``OutputDialect``'s label).
  package var errorCodeLabel: String = "error code"
  /// The reason, secrets masked.
  package var reason: String

  package init(
    step: String, action: String, command: String, termination: Termination?,
    errorCode: String? = nil, errorCodeLabel: String = "error code", reason: String
  ) {
    self.step = step
    self.action = action
    self.command = command
    self.termination = termination
    self.errorCode = errorCode
    self.errorCodeLabel = errorCodeLabel
    self.reason = reason
  }

  package var description: String {
    var lines = ["step '\(step)' failed at action '\(action)'"]
    lines.append("  command: \(command)")
    if let termination { lines.append("  \(termination)") }
    if let errorCode { lines.append("  \(errorCodeLabel): \(errorCode)") }
    lines.append(contentsOf: reason.split(separator: "\n").prefix(12).map { "  \($0)" })
    lines.append(
      "  fix the cause and run again: finished actions are kept and the run resumes here")
    return lines.joined(separator: "\n")
  }
}
