/// Which accounts get a JetStream of their own, decided from the config alone (pure).
///
/// As nats-server: with no `accounts` configured the global account `$G` has JetStream;
/// once accounts are configured, exactly the accounts with a `jetstream` block (or
/// `jetstream: enabled`) have it and every other account, `$G` included, is answered
/// "JetStream not enabled for account". The same in a cluster: each served account runs its
/// own clustered JetStream there (see docs/jetstream-cluster.md, "Accounts").
struct JetStreamAccountPlan: Equatable {
    /// Accounts whose JetStream runs here, with their limits (nil: unlimited, `$G`).
    var served: [Served] = []
    /// Accounts answered 503/10039 on `$JS.API`.
    var refused: [String] = []

    struct Served: Equatable {
        var account: String
        var limits: AccountJetStreamLimits?
    }

    init(accounts: [AccountConfig]) {
        if accounts.isEmpty {
            served = [Served(account: globalAccountName, limits: nil)]
            return
        }
        refused = [globalAccountName]
        for a in accounts {
            if let limits = a.jetStream {
                served.append(Served(account: a.name, limits: limits))
            } else {
                refused.append(a.name)
            }
        }
    }
}

/// An account name made safe as one directory name: letters, digits, `_` and `-` stay,
/// every other byte becomes `%XX` (so `..`, `/` or a NUL cannot escape the store, and two
/// names never share a directory).
enum AccountDirectoryName {
    static func encode(_ name: String) -> String {
        var out = ""
        for b in name.utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
                out.append(Character(Unicode.Scalar(b)))
            default:
                out += "%" + String(b, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out.isEmpty ? "%" : out
    }
}

private extension String {
    func leftPadded(to n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}
