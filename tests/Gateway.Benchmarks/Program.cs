using BenchmarkDotNet.Running;

BenchmarkSwitcher.FromAssembly(typeof(Gateway.Benchmarks.TopicRoutingBenchmarks).Assembly).Run(args);
