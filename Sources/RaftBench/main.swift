import Raft
print("RaftBench: \(Term(1))")
