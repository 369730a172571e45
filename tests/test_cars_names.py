"""Stanford Cars class names lose their model year, as the reference prompts do ("a photo of a Ford F-150 ...")."""

from caw_core.data.names import strip_model_year


def test_the_trailing_model_year_is_dropped_and_nothing_else():
    assert strip_model_year("AM General Hummer SUV 2000") == "AM General Hummer SUV"
    assert strip_model_year("Ford F-150 Regular Cab 2012") == "Ford F-150 Regular Cab"
    assert strip_model_year("Boeing 737-200") == "Boeing 737-200"  # a number that is not a year stays
    assert strip_model_year("Dodge Ram Pickup 3500 Crew Cab 2010") == "Dodge Ram Pickup 3500 Crew Cab"
