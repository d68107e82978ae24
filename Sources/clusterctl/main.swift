import NATSClient
print("clusterctl: no commands yet")
