import Foundation
import RunbookProcess
import RunbookAWS
import RunbookState
import RunbookEngine
import UniSyncRunbook
import RunbookCLI

/// The local configuration of the repository (`runbooks/local.json`), as step tests see it.
func configuredDeployment() throws -> Deployment {
  let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()
  return try Deployment.load(from: root.appendingPathComponent("runbooks/local.json").path)
}

/// An argument's text with exports filled in from `values` (`<NAME>` when missing) and documents
/// shown as their contents, so a test can parse what AWS would receive.
func render(_ argument: Argument, with values: [String: String]) -> String {
  argument.fragments.map { fragment in
    switch fragment {
    case .text(let text): text
    case .export(let name): values[name] ?? "<\(name)>"
    case .secretFile(let name): "file://<secret:\(name)>"
    case .document(_, let contents): render(Argument(contents), with: values)
    }
  }.joined()
}

extension Command {
  /// The argument right after `option` (`--ip-permissions`), if the command has it.
  func argument(after option: String) -> Argument? {
    guard let index = arguments.firstIndex(where: { $0 == .text(option) }),
      index + 1 < arguments.count
    else {
      return nil
    }
    return arguments[index + 1]
  }
}

/// The JSON value of `command`'s argument after `option`, exports filled in from `values`.
func jsonArgument(_ command: Command?, after option: String, with values: [String: String] = [:])
  throws
  -> Any
{
  guard let argument = command?.argument(after: option) else {
    throw ArgumentMissing(option: option)
  }
  return try JSONSerialization.jsonObject(with: Data(render(argument, with: values).utf8))
}

struct ArgumentMissing: Error, CustomStringConvertible {
  var option: String
  var description: String { "the command has no \(option)" }
}
