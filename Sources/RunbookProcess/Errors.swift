import Foundation

/// A command that could not be used as given (unknown step, missing prerequisite, ...).
public struct UsageError: Error, Sendable, Hashable, CustomStringConvertible {
  public var message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}

/// The run was stopped by the operator (Ctrl-C, SIGTERM, or [q]uit at a prompt).
public struct Interrupted: Error, Sendable, Hashable, CustomStringConvertible {
  public var reason: String
  public init(_ reason: String) { self.reason = reason }
  public var description: String {
    "interrupted (\(reason)); the checkpoint is saved, and 'run' resumes from here"
  }
}
