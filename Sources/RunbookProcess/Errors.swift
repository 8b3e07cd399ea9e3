import Foundation

/// A command that could not be used as given (unknown step, missing prerequisite, ...).
package struct UsageError: Error, Sendable, Hashable, CustomStringConvertible {
  package var message: String
  package init(_ message: String) { self.message = message }
  package var description: String { message }
}

/// The run was stopped by the operator (Ctrl-C, SIGTERM, or [q]uit at a prompt).
package struct Interrupted: Error, Sendable, Hashable, CustomStringConvertible {
  package var reason: String
  package init(_ reason: String) { self.reason = reason }
  package var description: String {
    "interrupted (\(reason)); the checkpoint is saved, and 'run' resumes from here"
  }
}
