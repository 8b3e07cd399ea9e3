import Foundation

/// One piece of a command-line argument.
package enum Fragment: Sendable, Hashable {
  /// Literal text, passed exactly as written (no shell ever sees it).
  case text(String)
  /// The value of a named export (`VPC_ID`), known only at run time; `plan` shows `<VPC_ID>`.
  case export(String)
  /// A secret's value, read by the tool from `file://PATH`: `file:///dev/stdin` with the value on
  /// standard input when it is the command's only secret and its input is free, else a 0600 file
  /// in the run's private folder (``ScratchFiles``), removed after the command.
  case secretFile(String)
  /// A document (a task definition, a policy) rendered from fragments, written to a 0600 temporary
  /// file; the argument carries `file://PATH`. `plan` shows `file://<NAME>` and the document itself.
  case document(name: String, contents: [Fragment])
}

/// One argument of a command, made of literal text, export references and secret files.
///
/// String literals are literal text. Interpolating `\(ref: "VPC_ID")` inserts an export reference;
/// interpolating any other value inserts its description as literal text.
package struct Argument: Sendable, Hashable, ExpressibleByStringInterpolation,
  CustomStringConvertible
{
  package var fragments: [Fragment]

  package init(_ fragments: [Fragment]) { self.fragments = fragments }
  package init(stringLiteral value: String) { fragments = [.text(value)] }
  package init(stringInterpolation: Interpolation) { fragments = stringInterpolation.fragments }

  /// An argument that is exactly one export's value.
  package static func ref(_ export: String) -> Argument { Argument([.export(export)]) }
  /// An argument that is `file://` plus where the named secret can be read (``Fragment/secretFile(_:)``).
  package static func secretFile(_ secret: String) -> Argument { Argument([.secretFile(secret)]) }
  /// An argument that is `file://` plus a temporary file holding `contents` (exports filled in).
  package static func document(_ name: String, _ contents: Argument) -> Argument {
    Argument([.document(name: name, contents: contents.fragments)])
  }
  /// Literal text from a value (configuration values are always literal).
  package static func text(_ value: String) -> Argument { Argument([.text(value)]) }

  /// The names of every export this argument needs.
  package var exportReferences: [String] {
    fragments.flatMap { fragment -> [String] in
      switch fragment {
      case .export(let name): [name]
      case .document(_, let contents): Argument(contents).exportReferences
      default: []
      }
    }
  }

  package var description: String {
    fragments.map { fragment in
      switch fragment {
      case .text(let text): text
      case .export(let name): "<\(name)>"
      case .secretFile(let name): "file://<secret:\(name)>"
      case .document(let name, _): "file://<\(name)>"
      }
    }.joined()
  }

  package struct Interpolation: StringInterpolationProtocol {
    var fragments: [Fragment] = []
    package init(literalCapacity: Int, interpolationCount: Int) {}
    package mutating func appendLiteral(_ literal: String) { appendText(literal) }
    package mutating func appendInterpolation(ref export: String) {
      fragments.append(.export(export))
    }
    package mutating func appendInterpolation(_ value: some CustomStringConvertible) {
      appendText(value.description)
    }
    private mutating func appendText(_ text: String) {
      guard !text.isEmpty else { return }
      fragments.appendMerging(.text(text))
    }
  }
}

/// What a command reads on standard input.
package enum CommandInput: Sendable, Hashable {
  /// /dev/null.
  case none
  /// A secret's value (never in argv, never printed).
  case secret(String)
}

/// A command as a value: the tool, its arguments, its input, and what it pipes into.
///
/// The same value is printed by `plan`, matched in tests, written (masked) to the audit log and
/// handed to the runner. Nothing ever turns it into a shell string.
package struct Command: Sendable, Hashable, CustomStringConvertible {
  package var tool: String
  package var arguments: [Argument]
  package var input: CommandInput
  /// A command that reads this one's standard output (`aws ecr get-login-password | docker login`).
  /// At most one element; an array only because a struct cannot hold itself directly.
  package var pipedInto: [Command]
  /// The folder it runs in (`zip` stores paths relative to it); nil: the tool's own.
  package var workingDirectory: Argument?

  package init(
    tool: String, arguments: [Argument], input: CommandInput = .none, pipedInto: Command? = nil,
    workingDirectory: Argument? = nil
  ) {
    self.tool = tool
    self.arguments = arguments
    self.input = input
    self.pipedInto = pipedInto.map { [$0] } ?? []
    self.workingDirectory = workingDirectory
  }

  /// This command with more arguments at the end.
  package func appending(_ more: [Argument]) -> Command {
    var copy = self
    copy.arguments += more
    return copy
  }

  /// This command piping its standard output into `consumer`.
  package func piped(into consumer: Command) -> Command {
    var copy = self
    copy.pipedInto = [consumer]
    return copy
  }

  /// Every export this command (and the command it pipes into) needs.
  package var exportReferences: [String] {
    (workingDirectory?.exportReferences ?? []) + arguments.flatMap(\.exportReferences)
      + pipedInto.flatMap(\.exportReferences)
  }

  /// Every secret this command uses, by name.
  package var secretReferences: [String] {
    var names: [String] = arguments.flatMap { argument in
      argument.fragments.compactMap { if case .secretFile(let name) = $0 { name } else { nil } }
    }
    if case .secret(let name) = input { names.append(name) }
    return names + pipedInto.flatMap(\.secretReferences)
  }

  /// The command as an operator would type it, with `<EXPORT>` placeholders and masked secrets.
  package var description: String {
    var words = [tool] + arguments.map { shellQuoted($0.description) }
    if case .secret(let name) = input { words.append("<<< <secret:\(name)>") }
    var line = words.joined(separator: " ")
    if let workingDirectory { line = "cd \(shellQuoted(workingDirectory.description)) && " + line }
    guard let consumer = pipedInto.first else { return line }
    return line + " | " + consumer.description
  }
}

/// Quotes a word for display the way a POSIX shell would need it; display only, never executed.
package func shellQuoted(_ word: String) -> String {
  if !word.isEmpty, word.unicodeScalars.allSatisfy(isShellSafe),
    !(word.hasPrefix("<") && !word.hasSuffix(">"))
  {
    return word
  }
  return "'" + word.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
}

/// Characters a shell takes literally outside quotes. (A switch, not a `CharacterSet`: building
/// one for every word was the largest cost of `plan`.)
private func isShellSafe(_ scalar: Unicode.Scalar) -> Bool {
  switch scalar {
  case "a"..."z", "A"..."Z", "0"..."9", "-", "_", ".", "/", ":", "=", ",", "@", "%", "+", "<", ">":
    true
  default: false
  }
}

extension Argument {
  /// The text with every export filled in from `values`; nil when one is unknown or the argument
  /// holds a secret (a secret's value is never rendered outside its temporary file).
  package func text(values: [String: String]) -> String? {
    struct Unknown: Error {}
    return try? render(
      export: { name in
        guard let value = values[name] else { throw Unknown() }
        return value
      },
      secretFile: { _ in throw Unknown() }, document: { $0 })
  }

  /// The argument as text: literal text as it is, each reference as `export` and `secretFile`
  /// say, and a document as `document` says of its own rendered text.
  package func render(
    export: (String) throws -> String, secretFile: (String) throws -> String,
    document: (String) throws -> String
  ) throws -> String {
    var text = ""
    for fragment in fragments {
      switch fragment {
      case .text(let literal): text += literal
      case .export(let name): text += try export(name)
      case .secretFile(let name): text += try secretFile(name)
      case .document(_, let contents):
        text += try document(
          Argument(contents).render(export: export, secretFile: secretFile, document: document))
      }
    }
    return text
  }
}

/// Arguments one after the other, as one argument.
package func joined(_ parts: [Argument]) -> Argument {
  var fragments: [Fragment] = []
  for fragment in parts.flatMap(\.fragments) { fragments.appendMerging(fragment) }
  return Argument(fragments)
}

extension Argument {
  package static func + (lhs: Argument, rhs: Argument) -> Argument { joined([lhs, rhs]) }
}

extension [Fragment] {
  /// Appends `fragment`, merged into the last one when both are literal text (an argument keeps
  /// one text fragment between two references).
  package mutating func appendMerging(_ fragment: Fragment) {
    if case .text(let next) = fragment, case .text(let previous) = last {
      self[count - 1] = .text(previous + next)
    } else {
      append(fragment)
    }
  }
}
