using System.ComponentModel.DataAnnotations;
using System.Globalization;

namespace Gateway.Protocols.Mqtt;

/// <summary>
/// <c>[Range(typeof(TimeSpan), min, max)]</c> without the type-converter lookup behind it, which
/// trimming and native AOT cannot see. An absent value is valid, as with <see cref="RangeAttribute"/>.
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class TimeSpanRangeAttribute(string minimum, string maximum) : ValidationAttribute
{
    public string Minimum { get; } = minimum;

    public string Maximum { get; } = maximum;

    public override bool IsValid(object? value) =>
        value is not TimeSpan time
        || (time >= TimeSpan.Parse(Minimum, CultureInfo.InvariantCulture) && time <= TimeSpan.Parse(Maximum, CultureInfo.InvariantCulture));
}
