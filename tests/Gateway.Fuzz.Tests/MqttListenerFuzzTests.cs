using System.Diagnostics;
using Xunit.Abstractions;

namespace Gateway.Fuzz.Tests;

/// <summary>
/// A bounded fuzz run against the MQTT listener: seeded, structure-aware mutations of MQTT
/// 3.1.1 and 5.0 packet sequences (<see cref="MqttCaseGenerator"/>), one fresh connection per
/// case, four at a time (one per lane). Fails on any error or critical log line (protocol refusals are
/// warnings), a connection the gateway does not close once the client's input has ended, a
/// healthy client's round trip failing between batches, an unobserved task exception, or the
/// GC heap growing past a generous bound over the run (after a full collection, with what clients
/// may legitimately leave behind, sessions and retained messages, deleted). Failing cases
/// are printed with their seed, index and bytes as a line for regressions.txt.
/// </summary>
[Trait("Category", "Integration")]
[Collection(FuzzCollection.Name)]
public sealed class MqttListenerFuzzTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Mqtt_listener_survives_a_bounded_fuzz_run()
    {
        var settings = FuzzSettings.FromEnvironment();
        output.WriteLine($"fuzz: seed {settings.Seed} (GATEWAY_FUZZ_SEED), up to {settings.MaxCases} cases (GATEWAY_FUZZ_CASES) or {settings.Duration.TotalSeconds:0} s (GATEWAY_FUZZ_SECONDS)");
        var unobserved = new List<string>();
        long overflows = 0;
        long unsentAtClose = 0;
        EventHandler<UnobservedTaskExceptionEventArgs> onUnobserved = (_, e) =>
        {
            // MQTTnet faults the task of a packet it did not send, which nobody awaits: a message
            // dropped from a session queue over Mqtt:MaxPendingMessagesPerClient (expected), or a
            // packet its send loop still had in hand when the connection ended. Only counted.
            if (e.Exception.InnerExceptions.All(static x => x is MQTTnet.Server.Exceptions.MqttPendingMessagesOverflowException))
            {
                Interlocked.Increment(ref overflows);
                return;
            }

            if (e.Exception.InnerExceptions.All(static x => x is InvalidOperationException && x.StackTrace?.Contains("MqttConnectedClient.SendPacketsLoop", StringComparison.Ordinal) == true))
            {
                Interlocked.Increment(ref unsentAtClose);
                return;
            }

            lock (unobserved)
            {
                if (unobserved.Count < 20)
                {
                    unobserved.Add(e.Exception.ToString());
                }
            }
        };
        TaskScheduler.UnobservedTaskException += onUnobserved;
        var failures = new List<string>();
        long cases = 0;
        var stopwatch = Stopwatch.StartNew();
        long baseline = 0;
        long final = 0;
        var harness = await FuzzHarness.StartAsync();
        harness.Output = output;
        try
        {
            while (cases < settings.MaxCases && stopwatch.Elapsed < settings.Duration && failures.Count == 0)
            {
                var first = cases;
                var count = (int)Math.Min(settings.BatchSize, settings.MaxCases - cases);
                var errorsBefore = harness.Logs.ErrorCount;
                await RunBatchAsync(harness, settings, first, count, failures);
                cases += count;
                if (harness.Logs.ErrorCount > errorsBefore)
                {
                    await FindErrorCasesAsync(harness, settings, first, count, failures);
                }

                try
                {
                    await harness.CheckHealthyAsync();
                }
                catch (Exception ex) when (ex is TimeoutException or OperationCanceledException or MQTTnet.Exceptions.MqttCommunicationException)
                {
                    failures.Add($"the healthy round trip failed after cases {first}..{first + count - 1} (seed {settings.Seed})");
                }

                if (first == 0)
                {
                    // After the first batch: code paths warmed up, pools filled.
                    await harness.ForgetClientStateAsync();
                    baseline = HeapAfterFullCollection();
                }
            }

            await harness.ForgetClientStateAsync();
            final = HeapAfterFullCollection();
            var seconds = stopwatch.Elapsed.TotalSeconds;
            output.WriteLine($"fuzz: {cases} cases in {seconds:0.0} s, {cases / seconds:0} cases/s; GC heap {baseline / 1048576.0:0.0} MB after the first batch, {final / 1048576.0:0.0} MB at the end");
            output.WriteLine($"fuzz: {harness.Logs.KnownRaces} errors from MQTTnet's known session-disposal race (not failures)");
            output.WriteLine($"fuzz: {Interlocked.Read(ref overflows)} messages dropped from full session queues, {Interlocked.Read(ref unsentAtClose)} packets unsent when their connection closed");
            output.WriteLine("fuzz: warnings by event: " + string.Join(", ", harness.Logs.Warnings.OrderByDescending(w => w.Value).Select(w => $"{w.Key} {w.Value}")));
        }
        finally
        {
            var errorsBeforeStop = harness.Logs.ErrorCount;
            await harness.DisposeAsync();
            if (harness.Logs.ErrorCount > errorsBeforeStop && failures.Count == 0)
            {
                failures.Add("errors logged while the gateway stopped:\n" + string.Join("\n", harness.Logs.Errors.Skip(errorsBeforeStop)));
            }

            TaskScheduler.UnobservedTaskException -= onUnobserved;
        }

        if (failures.Count > 0)
        {
            File.WriteAllLines(Path.Combine(AppContext.BaseDirectory, "fuzz-failures.txt"), failures);
        }

        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.True(unobserved.Count == 0, "Unobserved task exceptions:\n" + string.Join("\n", unobserved));
        Assert.True(final - baseline < settings.MaxHeapGrowthBytes, $"GC heap grew {(final - baseline) / 1048576.0:0.0} MB over {cases} cases (bound {settings.MaxHeapGrowthBytes / 1048576} MB, GATEWAY_FUZZ_HEAP_GROWTH_MB)");
    }

    private static async Task RunBatchAsync(FuzzHarness harness, FuzzSettings settings, long first, int count, List<string> failures)
    {
        var workers = Enumerable.Range(0, MqttCaseGenerator.Lanes).Select(async lane =>
        {
            for (var i = first + ((lane - (first % MqttCaseGenerator.Lanes) + MqttCaseGenerator.Lanes) % MqttCaseGenerator.Lanes); i < first + count; i += MqttCaseGenerator.Lanes)
            {
                var fuzzCase = MqttCaseGenerator.Generate(settings.Seed, i);
                var (outcome, _) = await harness.RunAsync(fuzzCase, settings.CloseTimeout);
                if (outcome == CaseOutcome.Hung)
                {
                    harness.Output?.WriteLine(Describe(settings, fuzzCase, "hung"));
                    lock (failures)
                    {
                        failures.Add(Describe(settings, fuzzCase, $"connection still open {settings.CloseTimeout.TotalSeconds:0} s after the input ended"));
                    }
                }
            }
        });
        await Task.WhenAll(workers);
    }

    // Errors are logged by the gateway, not by the case: replay the batch one case at a time to
    // find which cases cause them. When none does alone, the batch as a whole is reported.
    private static async Task FindErrorCasesAsync(FuzzHarness harness, FuzzSettings settings, long first, int count, List<string> failures)
    {
        var errors = string.Join("\n", harness.Logs.Errors.Where(e => !FuzzLogProvider.IsKnownMqttnetRace(e)).Take(5));
        var found = false;
        for (var i = first; i < first + count; i++)
        {
            var before = harness.Logs.ErrorCount;
            var fuzzCase = MqttCaseGenerator.Generate(settings.Seed, i);
            await harness.RunAsync(fuzzCase, settings.CloseTimeout);
            if (await ErrorLoggedAsync(harness, before))
            {
                failures.Add(Describe(settings, fuzzCase, "error logged: " + harness.Logs.Errors.Last()));
                found = true;
            }
        }

        if (!found)
        {
            failures.Add($"cases {first}..{first + count - 1} of seed {settings.Seed} logged errors together, none alone:\n{errors}");
        }
    }

    // Bounded poll: the gateway may log a connection's error just after closing it.
    private static async Task<bool> ErrorLoggedAsync(FuzzHarness harness, int before)
    {
        for (var i = 0; i < 5; i++)
        {
            if (harness.Logs.ErrorCount > before)
            {
                return true;
            }

            await Task.Delay(10);
        }

        return false;
    }

    private static string Describe(FuzzSettings settings, FuzzCase fuzzCase, string problem) =>
        $"seed{settings.Seed}-case{fuzzCase.Index} {fuzzCase.Hex}\n  # {problem}\n  # {fuzzCase.Description}";

    private static long HeapAfterFullCollection()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return GC.GetTotalMemory(forceFullCollection: true);
    }
}

[CollectionDefinition(Name)]
public sealed class FuzzCollection
{
    // The run measures the process's heap and its unobserved task exceptions: nothing else in
    // this assembly runs beside it.
    public const string Name = "fuzz";
}
