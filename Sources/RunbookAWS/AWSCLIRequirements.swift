import Foundation
import RunbookProcess

/// A parameter of an aws operation that older aws CLIs do not know.
///
/// The aws CLI builds an operation's options from the service model it ships with, so a
/// parameter AWS added later is refused by an older CLI before any request is sent: `Unknown
/// options: --if-none-match, *` (exit 252 on v2, 255 on v1). Debian 12's awscli package
/// (aws-cli/2.9.19) is such a CLI for S3's conditional writes.
package struct AWSCLIParameter: Sendable, Hashable {
  /// The member of the operation's input, as the service model names it (`IfNoneMatch`).
  package var name: String
  /// The first aws CLI v1 release whose model has it (CHANGELOG.rst of github.com/aws/aws-cli,
  /// branch `develop`).
  package var sinceV1: String
  /// The first aws CLI v2 release whose model has it (CHANGELOG.rst, branch `v2`).
  package var sinceV2: String

  package init(_ name: String, sinceV1: String, sinceV2: String) {
    self.name = name
    self.sinceV1 = sinceV1
    self.sinceV2 = sinceV2
  }

  /// The option as typed: `IfNoneMatch` is `--if-none-match`.
  package var option: String {
    var words: [String] = []
    var word = ""
    let characters = Array(name)
    for (index, character) in characters.enumerated() {
      let next = index + 1 < characters.count ? characters[index + 1] : nil
      let previous = index > 0 ? characters[index - 1] : nil
      // A new word at a capital after a small letter or digit, or at the last capital of a run
      // followed by a small letter (`SSECustomerKey`: sse, customer, key).
      if character.isUppercase, !word.isEmpty,
        previous?.isUppercase == false || next?.isLowercase == true
      {
        words.append(word)
        word = ""
      }
      word.append(character)
    }
    if !word.isEmpty { words.append(word) }
    return "--" + words.map { $0.lowercased() }.joined(separator: "-")
  }
}

/// The parameters of one aws operation that something the tool does needs.
package struct AWSCLIRequirement: Sendable, Hashable {
  /// The aws CLI's name of the service (`s3api`) and the operation (`put-object`).
  package var service: String
  package var operation: String
  package var parameters: [AWSCLIParameter]

  package init(_ service: String, _ operation: String, _ parameters: [AWSCLIParameter]) {
    self.service = service
    self.operation = operation
    self.parameters = parameters
  }

  /// `aws SERVICE OPERATION --generate-cli-skeleton input`: the operation's input with every
  /// parameter this CLI knows, as a JSON object. It sends no request and needs no credentials,
  /// on v1 and v2 alike.
  package var probe: Command {
    .aws(.text(service), .text(operation), "--generate-cli-skeleton", "input")
  }

  /// The parameters `skeleton` (the probe's standard output) lacks; nil when it is not a skeleton.
  package func missing(in skeleton: Data) -> [AWSCLIParameter]? {
    guard let object = try? JSONSerialization.jsonObject(with: skeleton) as? [String: Any],
      !object.isEmpty
    else { return nil }
    return parameters.filter { object[$0.name] == nil }
  }

  /// `s3api put-object --if-match, --if-none-match`.
  package func describe(_ parameters: [AWSCLIParameter]) -> String {
    "\(service) \(operation) " + parameters.map(\.option).joined(separator: ", ")
  }
}

/// What the probes of some requirements found out about the installed aws CLI.
package struct AWSCLIProbe: Sendable {
  /// Each requirement with the parameters this CLI lacks (only those lacking some).
  package var missing: [(requirement: AWSCLIRequirement, parameters: [AWSCLIParameter])] = []
  /// Requirements whose probe printed no skeleton, with why: nothing is known of them.
  package var unknown: [(requirement: AWSCLIRequirement, reason: String)] = []

  package init() {}

  /// `s3api put-object --if-match, --if-none-match and s3api delete-object --if-match`.
  package var missingText: String {
    let parts = missing.map { $0.requirement.describe($0.parameters) }
    guard parts.count > 1 else { return parts.first ?? "" }
    return parts.dropLast().joined(separator: ", ") + " and " + parts[parts.count - 1]
  }

  /// The oldest releases that know every missing parameter: (v1, v2).
  package var minimumVersions: (v1: String, v2: String) {
    let parameters = missing.flatMap(\.parameters)
    return (
      parameters.map(\.sinceV1).max(by: AWSCLI.versionPrecedes) ?? "",
      parameters.map(\.sinceV2).max(by: AWSCLI.versionPrecedes) ?? ""
    )
  }

  /// `v2 2.22.5 or later (v1: 1.36.10 or later)`, the installed major version first when known
  /// (`version` is what `aws --version` prints first: `aws-cli/2.9.19`).
  package func upgradeText(version: String?) -> String {
    let (v1, v2) = minimumVersions
    if AWSCLI.majorVersion(version) == "1" {
      return "aws CLI v1 \(v1) or later (or v2 \(v2) or later)"
    }
    return "aws CLI v2 \(v2) or later (or v1 \(v1) or later)"
  }
}

/// The installed aws CLI lacks parameters a command needs: one line, thrown before anything was
/// written.
package struct AWSCLITooOld: Error, Sendable, CustomStringConvertible {
  /// What cannot go on (`s3://bucket/prefix`).
  package var subject: String
  /// Why it needs the parameters (`S3 state is written with conditional requests`).
  package var need: String
  /// What else the operator can do (`or keep the state in a folder (--state-dir)`), or "".
  package var alternative: String
  package var probe: AWSCLIProbe
  /// What `aws --version` printed first (`aws-cli/2.9.19`), when known.
  package var version: String?

  package init(
    subject: String, need: String, alternative: String = "", probe: AWSCLIProbe,
    version: String?
  ) {
    self.subject = subject
    self.need = need
    self.alternative = alternative
    self.probe = probe
    self.version = version
  }

  package var description: String {
    "\(subject): \(need), and this aws CLI\(version.map { " (\($0))" } ?? "") has no \(probe.missingText): install \(probe.upgradeText(version: version))\(alternative.isEmpty ? "" : ", " + alternative); nothing was written"
  }
}

extension AWSCLI {
  /// What S3 state (`--state s3://…`, ``S3StateStore``) writes with: `state.json` with
  /// `--if-match` (the version read) or `--if-none-match '*'`, the lock and journal entries with
  /// `--if-none-match '*'`, the lock renewed with `--if-match` and deleted (release, `unlock`)
  /// with `--if-match`. S3 added conditional writes in August 2024 (If-None-Match), conditional
  /// deletes and If-Match on PutObject in November 2024: aws-cli/2.9.19 (Debian 12) knows none.
  package static let s3StateRequirements: [AWSCLIRequirement] = [
    AWSCLIRequirement(
      "s3api", "put-object",
      [
        AWSCLIParameter("IfMatch", sinceV1: "1.36.10", sinceV2: "2.22.5"),
        AWSCLIParameter("IfNoneMatch", sinceV1: "1.34.2", sinceV2: "2.17.34"),
      ]),
    AWSCLIRequirement(
      "s3api", "delete-object",
      [AWSCLIParameter("IfMatch", sinceV1: "1.36.8", sinceV2: "2.22.3")]),
  ]

  /// Parameters the steps pass that aws CLIs older than late 2022 lack (found by checking every
  /// option the steps pass against the service models of the aws CLI's releases): the RDS
  /// master password kept by RDS in Secrets Manager (the rds step), and secrets scheduled for
  /// deletion in a listing (the secrets step's lookups, destroy's leftover scan). Ubuntu 22.04's
  /// awscli (1.22.34) has neither; Debian 12's (2.9.19) has both.
  package static let stepRequirements: [AWSCLIRequirement] = [
    AWSCLIRequirement(
      "rds", "create-db-instance",
      [AWSCLIParameter("ManageMasterUserPassword", sinceV1: "1.27.36", sinceV2: "2.9.10")]),
    AWSCLIRequirement(
      "secretsmanager", "list-secrets",
      [AWSCLIParameter("IncludePlannedDeletion", sinceV1: "1.27.40", sinceV2: "2.9.12")]),
  ]

  /// The requirement among `requirements` with a parameter whose option is `option`.
  package static func requirement(
    withOption option: String, in requirements: [AWSCLIRequirement]
  ) -> (AWSCLIRequirement, AWSCLIParameter)? {
    for requirement in requirements {
      if let parameter = requirement.parameters.first(where: { $0.option == option }) {
        return (requirement, parameter)
      }
    }
    return nil
  }

  /// Runs the probe of each requirement (at once) through `resolver` (so with the run's
  /// `--region`, `--endpoint-url` and `--profile`) and `runner`. A probe that fails or prints
  /// something else than a skeleton tells nothing (``AWSCLIProbe/unknown``).
  package static func probe(
    _ requirements: [AWSCLIRequirement], runner: any CommandRunner, resolver: Resolver
  ) async -> AWSCLIProbe {
    let outputs = await withTaskGroup(of: (Int, Result<ProcessOutput, Error>).self) { group in
      for (index, requirement) in requirements.enumerated() {
        group.addTask {
          let scratch = ScratchFiles()
          defer { scratch.removeAll() }
          do {
            let invocation = try resolver.invocation(
              requirement.probe, values: [:], scratch: scratch)
            return (index, .success(try await runner.run(invocation)))
          } catch {
            return (index, .failure(error))
          }
        }
      }
      var outputs: [Int: Result<ProcessOutput, Error>] = [:]
      for await (index, output) in group { outputs[index] = output }
      return outputs
    }
    var probe = AWSCLIProbe()
    for (index, requirement) in requirements.enumerated() {
      switch outputs[index] {
      case .success(let output) where output.succeeded:
        if let missing = requirement.missing(in: output.standardOutput) {
          if !missing.isEmpty { probe.missing.append((requirement, missing)) }
        } else {
          probe.unknown.append((requirement, "it printed no JSON skeleton"))
        }
      case .success(let output):
        let reason =
          output.stderrText.split(separator: "\n").last.map(String.init) ?? "\(output.termination)"
        probe.unknown.append((requirement, reason))
      case .failure(let error):
        probe.unknown.append((requirement, "\(error)"))
      case nil:
        probe.unknown.append((requirement, "not run"))
      }
    }
    return probe
  }

  /// What `aws --version` prints first (`aws-cli/2.9.19`); nil when it cannot be run.
  package static func installedVersion(runner: any CommandRunner, resolver: Resolver) async
    -> String?
  {
    let scratch = ScratchFiles()
    defer { scratch.removeAll() }
    guard
      let invocation = try? resolver.invocation(
        Command(tool: tool, arguments: ["--version"]), values: [:], scratch: scratch),
      let output = try? await runner.run(invocation), output.succeeded
    else { return nil }
    return (output.stdoutText + output.stderrText).split(whereSeparator: \.isWhitespace).first
      .map(String.init)
  }

  /// The major version in what `aws --version` prints first (`aws-cli/2.9.19`): "2".
  package static func majorVersion(_ version: String?) -> String? {
    guard let version, let number = version.split(separator: "/").dropFirst().first else {
      return nil
    }
    return number.split(separator: ".").first.map(String.init)
  }

  /// Whether dotted version `a` comes before `b` (`1.36.8` before `1.36.10`).
  package static func versionPrecedes(_ a: String, _ b: String) -> Bool {
    let left = a.split(separator: ".").map { Int($0) ?? 0 }
    let right = b.split(separator: ".").map { Int($0) ?? 0 }
    for index in 0..<max(left.count, right.count) {
      let x = index < left.count ? left[index] : 0
      let y = index < right.count ? right[index] : 0
      if x != y { return x < y }
    }
    return false
  }
}
