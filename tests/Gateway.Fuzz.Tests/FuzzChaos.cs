namespace Gateway.Fuzz.Tests;

/// <summary>
/// The random source of one fuzz case, and the list of mutations it applied. Each choice point
/// asks <see cref="Maybe"/> with a rate in thousandths, scaled by the case's chaos level (0 for
/// a case that stays valid apart from deliberate choices, higher for rougher ones).
/// </summary>
internal sealed class FuzzChaos(Random random, int level)
{
    private readonly List<string> _applied = [];

    public int Level => level;

    public IReadOnlyList<string> Applied => _applied;

    public int Next(int maxExclusive) => random.Next(maxExclusive);

    public int Next(int minInclusive, int maxExclusive) => random.Next(minInclusive, maxExclusive);

    public bool Chance(int permille) => random.Next(1000) < permille;

    public T Pick<T>(IReadOnlyList<T> items) => items[random.Next(items.Count)];

    /// <summary>True (and noted) when the mutation <paramref name="name"/> is to be applied here.</summary>
    public bool Maybe(int permille, string name)
    {
        if (level == 0 || random.Next(1000) >= permille * level)
        {
            return false;
        }

        Note(name);
        return true;
    }

    public void Note(string name) => _applied.Add(name);

    public byte[] RandomBytes(int count)
    {
        var bytes = new byte[count];
        random.NextBytes(bytes);
        return bytes;
    }
}
