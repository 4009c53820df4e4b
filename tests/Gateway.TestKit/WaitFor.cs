namespace Gateway.TestKit;

/// <summary>Waits for state the test cannot get a signal for, by polling it with a bound.</summary>
public static class WaitFor
{
    public static async Task ConditionAsync(Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TestContext.DefaultTimeout);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Timed out waiting for {what}");
            }

            await Task.Yield();
            await Task.Delay(10);
        }
    }
}
