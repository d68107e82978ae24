/// Leader election (§5.2), pre-vote (dissertation §9.6) and leadership transfer (§3.10).
extension RaftNode {
    enum CampaignKind { case preElection, election, transfer }

    func campaign(_ kind: CampaignKind) {
        guard isPromotable else { return }
        leaseGuardAfterRestart = false
        campaignedByTransfer = kind == .transfer
        let voteTerm: Term
        if kind == .preElection {
            becomePreCandidate()
            voteTerm = term.next
        } else {
            becomeCandidate()
            voteTerm = term
        }
        tracker.recordVote(id, granted: true)
        if tracker.voteResult() == .won {
            // A single-voter group wins at once.
            if kind == .preElection { campaign(.election) } else { becomeLeader() }
            return
        }
        let request = VoteRequest(lastLogIndex: log.lastIndex, lastLogTerm: log.lastTerm,
                                  preVote: kind == .preElection, transfer: kind == .transfer)
        for peer in conf.voters where peer != id {
            send(to: peer, .requestVote(request), term: voteTerm)
        }
    }

    /// §5.2/§5.4.1: grant at most one vote per term, only to a candidate whose log is at least as
    /// up to date as ours. Pre-votes change no state and are refused while we hear from a leader,
    /// so a node that was partitioned away cannot disturb a healthy leader when it comes back.
    func handleRequestVote(_ m: Message, _ r: VoteRequest) {
        let canVote = vote == m.from
            || (vote == nil && leader == nil)
            || (r.preVote && m.term > term)
        let hearsFromLeader = r.preVote && !r.transfer && leader != nil
            && electionElapsed < config.electionTimeoutTicks
        let upToDate = log.isUpToDate(lastIndex: r.lastLogIndex, lastTerm: r.lastLogTerm)
        if canVote && !hearsFromLeader && upToDate {
            // Answer in the candidate's term so it counts the vote.
            send(to: m.from, .voteResponse(VoteResponse(granted: true, preVote: r.preVote)), term: m.term)
            if !r.preVote {
                electionElapsed = 0
                vote = m.from
            }
        } else {
            send(to: m.from, .voteResponse(VoteResponse(granted: false, preVote: r.preVote)))
        }
    }

    func handleVoteResponse(_ m: Message, _ r: VoteResponse) {
        let expecting = (role == .preCandidate && r.preVote) || (role == .candidate && !r.preVote)
        guard expecting else { return }
        tracker.recordVote(m.from, granted: r.granted)
        switch tracker.voteResult() {
        case .won:
            if role == .preCandidate { campaign(.election) } else { becomeLeader() }
        case .lost:
            becomeFollower(term: term, leader: nil)
        case .pending:
            break
        }
    }

    /// Starts an election now (to bootstrap a group quickly, or in tests) instead of waiting
    /// for the election timeout. Runs a pre-vote first when enabled. No-op for non-voters.
    public func startElection() {
        wake()
        guard role != .leader else { return }
        campaign(config.preVote ? .preElection : .election)
    }

    /// The leader asked us to take over: campaign at once, bypassing pre-vote and leases.
    func handleTimeoutNow(_ m: Message) {
        guard role != .leader else { return }
        campaign(.transfer)
    }

    /// Hands leadership to `target` (graceful shutdown, rebalancing): the leader stops accepting
    /// proposals, brings `target` up to date, then sends it TimeoutNow. Abandoned after an
    /// election timeout.
    public func transferLeadership(to target: NodeID) throws {
        wake()
        guard role == .leader else { throw RaftError.notLeader(leader: leader) }
        guard target != id, conf.isVoter(target) else { throw RaftError.invalidConfChange }
        if leadTransferee == target { return }
        leadTransferee = target
        leaseRevoked = true
        electionElapsed = 0
        guard let pr = tracker.progress[target] else { return }
        if pr.match == log.lastIndex {
            timeoutNowSent = true
            send(to: target, .timeoutNow)
        } else {
            _ = sendAppend(to: target)
        }
    }

    /// The node the leader is handing over to, if a transfer is in progress.
    public var transferTarget: NodeID? { leadTransferee }

    /// When this node leads because the leader of the term before handed over to it (it won the
    /// election a TimeoutNow started): that term. Its leader was alive when it handed over, and
    /// every entry of that term in the log is one of its proposals.
    public var handedOverTerm: Term? {
        guard role == .leader, campaignedByTransfer, term > .zero else { return nil }
        return Term(term.rawValue - 1)
    }
}
