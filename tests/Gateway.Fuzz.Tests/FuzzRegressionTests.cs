namespace Gateway.Fuzz.Tests;

/// <summary>
/// Every input that ever failed the fuzz run (and the hand-written edge cases beside them),
/// from regressions.txt: one line per case, <c>name HEX</c>, <c>#</c> lines are comments. Each
/// runs on a fresh gateway: the connection must be closed, nothing logged at error level, and a
/// healthy client must still round-trip.
/// </summary>
[Trait("Category", "Integration")]
[Collection(FuzzCollection.Name)]
public sealed class FuzzRegressionTests
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var name in Load().Keys)
        {
            data.Add(name);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Regression_case_is_refused_or_served_without_errors(string name)
    {
        var bytes = Load()[name];
        var harness = await FuzzHarness.StartAsync();
        try
        {
            var (outcome, _) = await FuzzTarget.RunAsync(harness.Gateway.MqttPort, bytes, TimeSpan.FromSeconds(15), CancellationToken.None);

            Assert.Equal(CaseOutcome.Closed, outcome);
            await harness.CheckHealthyAsync();
        }
        finally
        {
            await harness.DisposeAsync(); // stopped: whatever it was going to log is logged
        }

        Assert.True(harness.Logs.ErrorCount == 0, string.Join("\n", harness.Logs.Errors));
    }

    private static Dictionary<string, byte[]> Load()
    {
        var cases = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var line in File.ReadLines(Path.Combine(AppContext.BaseDirectory, "regressions.txt")))
        {
            var text = line.Trim();
            if (text.Length == 0 || text.StartsWith('#'))
            {
                continue;
            }

            var parts = text.Split(' ', 2, StringSplitOptions.RemoveEmptyEntries);
            cases.Add(parts[0], Convert.FromHexString(parts[1]));
        }

        return cases;
    }
}
