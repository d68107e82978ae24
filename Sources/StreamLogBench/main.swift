import StreamLog
print("StreamLogBench: \(StreamSequence(1))")
