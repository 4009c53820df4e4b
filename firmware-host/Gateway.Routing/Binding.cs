namespace Gateway.Routing;

/// <summary>Joins an exchange to a queue under a binding key (and, for headers exchanges, arguments).</summary>
public sealed record class Binding(string Exchange, MessageQueue Queue, string Key, IReadOnlyDictionary<string, object?>? Arguments = null)
{
    public bool Matches(string key, MessageQueue queue, IReadOnlyDictionary<string, object?>? arguments) =>
        ReferenceEquals(Queue, queue) && string.Equals(Key, key, StringComparison.Ordinal) && ArgumentsEqual(Arguments, arguments);

    private static bool ArgumentsEqual(IReadOnlyDictionary<string, object?>? a, IReadOnlyDictionary<string, object?>? b)
    {
        var countA = a?.Count ?? 0;
        var countB = b?.Count ?? 0;
        if (countA != countB)
        {
            return false;
        }

        if (countA == 0)
        {
            return true;
        }

        foreach (var (name, value) in a!)
        {
            if (!b!.TryGetValue(name, out var other) || !Equals(value, other))
            {
                return false;
            }
        }

        return true;
    }
}
