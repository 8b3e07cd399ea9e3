import Foundation
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// Secret values known to this run, by name. Held in memory only; used to deliver and to mask.
package final class SecretStore: Sendable {
  private let values = Mutex<[String: String]>([:])

  package init() {}

  package func set(_ name: String, _ value: String) { values.withLock { $0[name] = value } }
  package func value(_ name: String) -> String? { values.withLock { $0[name] } }

  /// `text` with every known secret value (of at least 4 characters) replaced by `***`.
  package func mask(_ text: String) -> String {
    let secrets = values.withLock { Array($0.values) }.filter { $0.count >= 4 }
      .sorted { $0.count > $1.count }
    return secrets.reduce(text) { $0.replacingOccurrences(of: $1, with: "***") }
  }
}

/// An export, secret or tool that a command needs but this run does not have.
package struct MissingValue: Error, Sendable, Hashable, CustomStringConvertible {
  package var name: String
  package var isSecret: Bool
  package var description: String {
    isSecret
      ? "the secret '\(name)' has no value in this run" : "the export \(name) is not known yet"
  }
}

/// Turns command values into something to show or something to run.
package struct Resolver: Sendable {
  /// Arguments appended to every command of a tool, by tool (the aws CLI's global options).
  package var toolArguments: [String: [String]]
  package var secrets: SecretStore
  /// Where some programs are, by the name commands use (`runbook-health-probe`: beside `runbook`).
  /// Commands keep the bare name, so what `plan` shows does not depend on the installation; a
  /// program not listed is looked up on PATH when it starts.
  package var programs: [String: String]

  package init(
    toolArguments: [String: [String]], secrets: SecretStore, programs: [String: String] = [:]
  ) {
    self.toolArguments = toolArguments
    self.secrets = secrets
    self.programs = programs
  }

  /// What to start for a command's tool: its listed path, else the name (found on PATH).
  package func executable(_ tool: String) -> String { programs[tool] ?? tool }

  /// The full argv as shown to people: known exports filled in, unknown ones as `<NAME>`, secrets masked.
  package func display(_ command: Command, values: [String: String]) -> String {
    let filled = fill(command, values: values)
    var text = filled.description
    for argument in filled.arguments + filled.pipedInto.flatMap(\.arguments) {
      for case .document(let name, let contents) in argument.fragments {
        text += "\n  <\(name)>:\n" + Argument(contents).description
      }
    }
    return text
  }

  /// Text made of fragments (a manual action's instructions) with known exports filled in, unknown
  /// ones as `<NAME>`.
  package func display(_ argument: Argument, values: [String: String]) -> String {
    Argument(fillFragments(argument.fragments, values: values)).description
  }

  /// The command with every known export replaced by its value and aws's global options added.
  package func fill(_ command: Command, values: [String: String]) -> Command {
    var copy = command
    copy.arguments = command.arguments.map { argument in
      Argument(fillFragments(argument.fragments, values: values))
    }
    copy.arguments += (toolArguments[command.tool] ?? []).map { Argument.text($0) }
    copy.workingDirectory = command.workingDirectory.map {
      Argument(fillFragments($0.fragments, values: values))
    }
    copy.pipedInto = command.pipedInto.map { fill($0, values: values) }
    return copy
  }

  private func fillFragments(_ fragments: [Fragment], values: [String: String]) -> [Fragment] {
    fragments.map { fragment in
      switch fragment {
      case .export(let name): values[name].map { .text($0) } ?? fragment
      case .document(let name, let contents):
        .document(name: name, contents: fillFragments(contents, values: values))
      default: fragment
      }
    }
  }

  /// The text of fragments with every export and secret filled in (documents become files).
  package func text(_ fragments: [Fragment], values: [String: String], scratch: ScratchFiles) throws
    -> String
  {
    try Argument(fragments).render(
      export: { name in
        guard let value = values[name] else { throw MissingValue(name: name, isSecret: false) }
        return value
      },
      secretFile: { name in
        guard let value = secrets.value(name) else {
          throw MissingValue(name: name, isSecret: true)
        }
        return "file://" + (try scratch.write(value))
      },
      document: { contents in "file://" + (try scratch.write(contents)) })
  }

  /// A runnable invocation. A command with exactly one secret argument and nothing else to read
  /// gets the secret on its standard input and `file:///dev/stdin` in the argument (the aws CLI
  /// reads a parameter from a `file://` path), so the value never touches the disk; other secrets
  /// and documents are files under `scratch` (0600), which the caller removes. A command whose
  /// standard input is taken (the consumer of a pipe: `standardInputFree` false) gets files only.
  package func invocation(
    _ command: Command, values: [String: String], scratch: ScratchFiles,
    standardInputFree: Bool = true
  ) throws -> Invocation {
    var argumentsToRender = command.arguments
    var input: Data?
    if case .secret(let name) = command.input {
      guard let value = secrets.value(name) else { throw MissingValue(name: name, isSecret: true) }
      input = Data(value.utf8)
    } else if standardInputFree, let (argument, fragment, name) = soleSecretFile(command) {
      guard let value = secrets.value(name) else { throw MissingValue(name: name, isSecret: true) }
      argumentsToRender[argument].fragments[fragment] = .text(Self.standardInputFile)
      input = Data(value.utf8)
    }
    var arguments = try argumentsToRender.map {
      try text($0.fragments, values: values, scratch: scratch)
    }
    arguments += toolArguments[command.tool] ?? []
    let directory = try command.workingDirectory.map {
      try text($0.fragments, values: values, scratch: scratch)
    }
    return Invocation(
      executable: executable(command.tool), arguments: arguments, standardInput: input,
      workingDirectory: directory)
  }

  /// What a secret argument delivered on standard input reads.
  package static let standardInputFile = "file:///dev/stdin"

  /// The place of the command's only secret file fragment (outside documents, which are files
  /// anyway), when it has exactly one.
  private func soleSecretFile(_ command: Command) -> (Int, Int, String)? {
    var found: [(Int, Int, String)] = []
    for (argument, value) in command.arguments.enumerated() {
      for (fragment, piece) in value.fragments.enumerated() {
        if case .secretFile(let name) = piece { found.append((argument, fragment, name)) }
      }
    }
    return found.count == 1 ? found[0] : nil
  }
}

/// Files holding secrets or documents for one command: a private 0700 folder, each file 0600,
/// all removed after. The folder is made in `parent` (a ``PrivateFolder`` of the run, inside the
/// state directory), or in the temporary folder when there is none.
package final class ScratchFiles: @unchecked Sendable {
  private let parent: String?
  private var directory: String?
  private var count = 0

  package init(in parent: String? = nil) { self.parent = parent }

  package func write(_ value: String) throws -> String {
    if directory == nil {
      let base = parent ?? NSTemporaryDirectory()
      var template = Array((base + "/runbook-XXXXXX").utf8CString)
      guard let made = mkdtemp(&template) else {
        throw FileWriteError(path: base, reason: "cannot create a private folder")
      }
      directory = String(cString: made)
    }
    count += 1
    let path = "\(directory!)/value-\(count)"
    try writeFileDurably(Data(value.utf8), to: path)
    return path
  }

  /// Removes every file written.
  package func removeAll() {
    guard let directory else { return }
    try? FileManager.default.removeItem(atPath: directory)
    self.directory = nil
  }

  deinit { removeAll() }
}
