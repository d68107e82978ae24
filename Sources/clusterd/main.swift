import ClusterServer
print("clusterd \(ServerVersion.clusterd)")
