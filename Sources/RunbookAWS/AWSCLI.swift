import Foundation
import RunbookProcess

extension Command {
  /// An `aws` command: `aws SERVICE OPERATION ARGS...`.
  package static func aws(_ arguments: Argument...) -> Command {
    Command(tool: AWSCLI.tool, arguments: arguments)
  }

  /// An `aws` command from an array of arguments.
  package static func aws(_ arguments: [Argument]) -> Command {
    Command(tool: AWSCLI.tool, arguments: arguments)
  }

  /// The `aws` service and operation (`ec2 create-vpc`), or a other tool's subcommand.
  package var operation: String {
    arguments.prefix(tool == AWSCLI.tool ? 2 : 1).map(\.description).joined(separator: " ")
  }
}

/// The aws CLI as the tool runs it: its name, the options every call gets, how its output reads.
package enum AWSCLI {
  /// The program.
  package static let tool = "aws"

  /// The account of the credentials in use: `sts get-caller-identity` prints it alone.
  package static let callerAccount = Command.aws(
    "sts", "get-caller-identity", "--query", "Account", "--output", "text")
  /// What an account id looks like.
  package static let accountPattern = #"^[0-9]{12}$"#

  /// The arguments appended to every aws call (`--region`, `--endpoint-url`, `--profile`).
  package static func toolArguments(_ settings: AWSSettings) -> [String: [String]] {
    [tool: settings.globalArguments]
  }

  /// The characters of a password RDS accepts for its master user: letters, digits and
  /// `-_.~!#%^*+=`; never `/`, `@`, `"` or a space (CreateDBInstance, MasterUserPassword).
  package static let rdsPasswordAlphabet =
    "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789-_.~!#%^*+="
}

/// How the aws CLI's output reads: `An error occurred (Code) when calling ...`, throttling codes,
/// connection failures, request ids.
package struct AWSCLIDialect: OutputDialect {
  package init() {}
  package var errorCodeLabel: String { "AWS error" }
  package func errorCode(in stderr: String) -> String? { awsErrorCode(in: stderr) }
  package func isThrottling(_ code: String) -> Bool { throttlingErrorCodes.contains(code) }
  package func isNotVisibleYet(_ code: String) -> Bool { notVisibleYetErrorCodes.contains(code) }
  package func explain(_ stderr: String) -> String { explainAWSFailure(stderr) }
  package func requestID(in text: String) -> String? { awsRequestID(in: text) }
}

extension Resolver {
  /// A resolver that adds the aws CLI's global options (`settings`) to every aws call.
  package init(aws settings: AWSSettings, secrets: SecretStore, programs: [String: String] = [:]) {
    self.init(
      toolArguments: AWSCLI.toolArguments(settings), secrets: secrets, programs: programs)
  }
}
