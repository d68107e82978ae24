#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import StreamLog

/// The process's open-files budget: the soft limit is raised to the hard one at start (as Go
/// programs such as nats-server do), and the store and Raft log files share a descriptor pool
/// under it, so thousands of idle streams do not need two descriptors each
/// (docs/jetstream-cluster.md, "Many streams").
public enum OpenFiles {
    /// Descriptors left for everything but store files (client and route sockets, the
    /// monitoring listener, directory syncs, config reloads): a quarter of the limit, at least
    /// 256 and at most 4096.
    public static func storeBudget(limit: Int) -> Int {
        let reserve = min(4096, max(256, limit / 4))
        return max(64, limit - reserve)
    }

    /// Raises the soft limit to the hard limit and installs the shared descriptor pool.
    /// `override` (`CLUSTERD_MAX_OPEN_STORE_FILES`) replaces the computed budget. Returns the
    /// limit and the budget, for the start-up log.
    @discardableResult
    public static func configure(override: Int? = nil) -> (limit: Int, storeFiles: Int) {
        #if canImport(Glibc)
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        #else
        let resource = RLIMIT_NOFILE
        #endif
        var rl = rlimit()
        var limit = 1024
        if getrlimit(resource, &rl) == 0 {
            if rl.rlim_cur < rl.rlim_max {
                var raised = rl
                raised.rlim_cur = rl.rlim_max
                if setrlimit(resource, &raised) == 0 { rl = raised }
            }
            limit = Int(clamping: min(rl.rlim_cur, 1 << 20)) // "unlimited" is the largest value
        }
        let budget = override.map { max(16, $0) } ?? storeBudget(limit: limit)
        PosixFileSystem.sharedPool = FileDescriptorPool(limit: budget)
        return (limit, budget)
    }
}
