import Foundation
import RunbookAWS
import UniSyncRunbook

extension Doctor {
  /// Asks IAM's policy simulator whether the credentials may make every call of `runbook policy`
  /// (`iam simulate-principal-policy` with the caller's ARN). Credentials that may not simulate
  /// get a WARN naming the permission: the simulation is a convenience, not a prerequisite.
  /// https://docs.aws.amazon.com/IAM/latest/APIReference/API_SimulatePrincipalPolicy.html
  func policySimulationCheck(_ context: Context, caller: String) async -> DoctorCheck {
    let name = "IAM policy"
    let principal = Self.simulationPrincipal(caller)
    // Statements with a condition (PassRole to a service, tags on create, service-linked roles)
    // need context keys the simulator is not given here: those are left to the calls themselves.
    let policy = OperatorPolicy(
      steps: Catalogue.steps, deployment: context.deployment, s3State: context.s3State)
    let actions = Set(policy.statements.filter { $0.condition.isEmpty }.flatMap(\.actions)).sorted()
    let arguments =
      [
        "iam", "simulate-principal-policy", "--policy-source-arn", principal, "--action-names",
      ] + actions + [
        "--query", "EvaluationResults[?EvalDecision!='allowed'].EvalActionName", "--output",
        "text",
      ]
    guard let output = await run("aws", awsArguments(context, arguments)) else {
      return DoctorCheck(name: name, level: .warn, detail: "cannot run aws", fix: nil)
    }
    guard output.succeeded else {
      let code = awsErrorCode(in: output.stderrText)
      if ["AccessDenied", "AccessDeniedException", "UnauthorizedOperation"].contains(code ?? "") {
        return DoctorCheck(
          name: name, level: .warn,
          detail:
            "not checked: iam:SimulatePrincipalPolicy is not allowed for \(principal), so doctor cannot ask IAM whether the \(actions.count) actions of 'runbook policy' are",
          fix:
            "allow iam:SimulatePrincipalPolicy on \(principal), or compare its policies with 'runbook policy'"
        )
      }
      let reason = output.stderrText.split(separator: "\n").last.map(String.init) ?? "no answer"
      return DoctorCheck(
        name: name, level: .warn, detail: "not checked: the simulation failed (\(reason))",
        fix: "compare the credentials' policies with 'runbook policy'")
    }
    let denied = output.stdoutText.split(whereSeparator: \.isWhitespace).map(String.init)
      .filter { $0 != "None" }
    guard denied.isEmpty else {
      let shown = denied.prefix(8).joined(separator: ", ")
      return DoctorCheck(
        name: name, level: .fail,
        detail:
          "\(denied.count) of \(actions.count) actions are not allowed for \(principal): \(shown)"
          + (denied.count > 8 ? ", ..." : ""),
        fix: "attach the policy 'runbook policy' prints to \(principal)")
    }
    return DoctorCheck(
      name: name, level: .ok,
      detail:
        "the \(actions.count) actions of 'runbook policy' are allowed for \(principal) (iam simulate-principal-policy)",
      fix: nil)
  }

  /// The IAM principal the simulator takes: a session of an assumed role is simulated as its
  /// role (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION` -> `arn:aws:iam::ACCOUNT:role/ROLE`).
  static func simulationPrincipal(_ caller: String) -> String {
    let parts = caller.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false)
    guard parts.count == 6, parts[2] == "sts", parts[5].hasPrefix("assumed-role/") else {
      return caller
    }
    let role = parts[5].split(separator: "/").dropFirst().first.map(String.init) ?? ""
    return "arn:\(parts[1]):iam::\(parts[4]):role/\(role)"
  }
}
