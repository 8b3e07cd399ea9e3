import Foundation
import RunbookProcess
import RunbookState

extension Engine {
  /// Gathers every secret the steps still need, before any call: generated ones are made here,
  /// supplied ones come from the environment, a file, or a prompt. Throws ``UsageError`` naming
  /// what is missing when there is no terminal to ask on.
  func gatherSecrets(
    _ steps: [any Step<Configuration>], checkpoint: Checkpoint?, environment: [String: String]
  )
    throws
  {
    for step in steps {
      let pending = step.actions(for: deployment).filter {
        checkpoint?.record(step.id, $0.name)?.status != .done || overwrites($0)
      }
      let needed = Set(
        pending.flatMap {
          $0.command.secretReferences + ($0.precheck?.command.secretReferences ?? [])
            + (overwrites($0) ? $0.overwrite?.secretReferences ?? [] : [])
        })
      for input in step.secretInputs(for: deployment) where needed.contains(input.name) {
        guard resolver.secrets.value(input.name) == nil else { continue }
        resolver.secrets.set(
          input.name, try value(of: input, step: step.id, environment: environment))
      }
    }
  }

  private func value(of input: SecretInput, step: String, environment: [String: String]) throws
    -> String
  {
    switch input.source {
    case .randomBase64(let bytes):
      return Data(randomBytes(bytes)).base64EncodedString()
    case .randomPassword(let length, let characters):
      let alphabet = Array(characters)
      return String(randomBytes(length).map { alphabet[Int($0) % alphabet.count] })
    case .supplied(let fields, let file):
      var values: [String: String] = [:]
      for field in fields {
        if let value = environment[field.environmentVariable], !value.isEmpty {
          values[field.field] = value
        }
      }
      if values.count < fields.count, let file {
        let path = file.hasPrefix("/") ? file : deployment.baseDirectory + "/" + file
        guard let data = FileManager.default.contents(atPath: path) else {
          throw UsageError("step '\(step)': \(input.label): the file \(path) cannot be read")
        }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(
          in: .whitespacesAndNewlines)
        if fields.count == 1, fields[0].field == "value" {
          values["value"] = values["value"] ?? text
        } else if let object = try? JSONDecoder().decode([String: String].self, from: data) {
          for field in fields where values[field.field] == nil {
            values[field.field] = object[field.field]
          }
        } else {
          throw UsageError(
            "step '\(step)': \(input.label): \(path) must hold a JSON object with \(fields.map(\.field).joined(separator: ", "))"
          )
        }
      }
      for field in fields where values[field.field] == nil {
        if let prompter, let answer = prompter.secret(prompt: "\(input.label) (\(field.field))"),
          !answer.isEmpty
        {
          values[field.field] = answer
        }
        try checkInterrupted()  // Ctrl-C at the prompt
      }
      let missing = fields.filter { values[$0.field] == nil }
      if !missing.isEmpty {
        throw UsageError(
          "step '\(step)' needs \(input.label): set \(missing.map(\.environmentVariable).joined(separator: " and ")), name a file in the configuration, or run in a terminal to be asked"
        )
      }
      if fields.count == 1, fields[0].field == "value" { return values["value"]! }
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.sortedKeys]
      return String(decoding: try encoder.encode(values), as: UTF8.self)
    }
  }
}

/// Cryptographically random bytes from the system generator.
func randomBytes(_ count: Int) -> [UInt8] {
  var generator = SystemRandomNumberGenerator()
  return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
}
