"""EventStoreSettings: defaults, validation, from_mapping and from_env."""

from __future__ import annotations

import pytest

from dynamo_es import EventStoreSettings
from dynamo_es.exceptions import ConfigurationError


class TestDefaults:
    def test_defaults_match_the_documented_values(self) -> None:
        """A bare EventStoreSettings has the documented defaults."""
        settings = EventStoreSettings()
        assert settings.events_table_name == "Events"
        assert (settings.partition_key_attribute, settings.sort_key_attribute) == ("pk", "sk")
        assert settings.use_transactional_write is True
        assert settings.max_batch_size == 100
        assert settings.streams_poll_interval_ms == 1000
        assert settings.create_table_if_not_exists is True
        assert settings.use_on_demand_capacity is True
        assert settings.enable_streams is True
        assert settings.endpoint_url is None

    def test_credentials_stay_out_of_repr(self) -> None:
        """The secret key never shows in a repr (logs, tracebacks)."""
        settings = EventStoreSettings(aws_access_key_id="AKIA", aws_secret_access_key="s3cr3t")
        assert "s3cr3t" not in repr(settings)


class TestValidation:
    @pytest.mark.parametrize(
        ("key", "value"),
        [
            ("max_batch_size", 0),
            ("max_batch_size", 101),
            ("max_batch_size", True),
            ("events_table_name", "ab"),
            ("events_table_name", "bad name"),
            ("streams_poll_interval_ms", 0),
            ("use_on_demand_capacity", "yes"),
            ("read_capacity_units", 0),
            ("partition_key_attribute", ""),
            ("endpoint_url", ""),
        ],
    )
    def test_bad_values_name_the_key(self, key: str, value: object) -> None:
        """Each bad value raises ConfigurationError naming its key."""
        with pytest.raises(ConfigurationError) as caught:
            EventStoreSettings(**{key: value})  # type: ignore[arg-type]
        assert caught.value.key == key
        assert key in str(caught.value)

    def test_key_attributes_must_differ(self) -> None:
        """Partition and sort key cannot share a name."""
        with pytest.raises(ConfigurationError, match="sort_key_attribute"):
            EventStoreSettings(partition_key_attribute="k", sort_key_attribute="k")


class TestFromMapping:
    def test_accepts_snake_and_pascal_case_and_parses_strings(self) -> None:
        """A configuration section in either spelling, with string values, builds settings."""
        settings = EventStoreSettings.from_mapping(
            {
                "EventsTableName": "Orders",
                "max_batch_size": "25",
                "UseOnDemandCapacity": "false",
                "enableStreams": False,
            }
        )
        assert settings.events_table_name == "Orders"
        assert settings.max_batch_size == 25
        assert settings.use_on_demand_capacity is False
        assert settings.enable_streams is False

    def test_unknown_key_is_an_error(self) -> None:
        """A key that names no setting is rejected, not ignored."""
        with pytest.raises(ConfigurationError) as caught:
            EventStoreSettings.from_mapping({"EventTableName": "x"})
        assert caught.value.key == "EventTableName"

    @pytest.mark.parametrize(
        ("mapping", "key"),
        [
            ({"max_batch_size": "many"}, "max_batch_size"),
            ({"enable_streams": "perhaps"}, "enable_streams"),
            ({"MaxBatchSize": 500}, "max_batch_size"),
        ],
    )
    def test_bad_values_name_the_key(self, mapping: dict[str, object], key: str) -> None:
        """Unparseable or out-of-range values name the setting."""
        with pytest.raises(ConfigurationError) as caught:
            EventStoreSettings.from_mapping(mapping)
        assert caught.value.key == key


class TestFromEnv:
    def test_reads_prefixed_variables(self) -> None:
        """DYNAMO_ES_* variables set the matching options; others are ignored."""
        settings = EventStoreSettings.from_env(
            environ={
                "DYNAMO_ES_EVENTS_TABLE_NAME": "Ledger",
                "DYNAMO_ES_ENDPOINT_URL": "http://127.0.0.1:8000",
                "DYNAMO_ES_USE_TRANSACTIONAL_WRITE": "0",
                "DYNAMO_ES_STREAMS_POLL_INTERVAL_MS": "250",
                "HOME": "/root",
            }
        )
        assert settings.events_table_name == "Ledger"
        assert settings.endpoint_url == "http://127.0.0.1:8000"
        assert settings.use_transactional_write is False
        assert settings.streams_poll_interval_ms == 250

    def test_custom_prefix(self) -> None:
        """Another prefix selects other variables."""
        settings = EventStoreSettings.from_env("APP_ES_", environ={"APP_ES_REGION": "eu-west-1"})
        assert settings.region == "eu-west-1"

    def test_unknown_variable_is_an_error(self) -> None:
        """A misspelt variable under the prefix is rejected with its full name."""
        with pytest.raises(ConfigurationError) as caught:
            EventStoreSettings.from_env(environ={"DYNAMO_ES_TABLE": "x"})
        assert caught.value.key == "DYNAMO_ES_TABLE"

    @pytest.mark.parametrize(
        ("variable", "value"),
        [
            ("DYNAMO_ES_MAX_BATCH_SIZE", "1000"),
            ("DYNAMO_ES_MAX_BATCH_SIZE", "ten"),
            ("DYNAMO_ES_ENABLE_STREAMS", "2"),
        ],
    )
    def test_bad_value_names_the_variable(self, variable: str, value: str) -> None:
        """A bad value is reported under the environment variable's name."""
        with pytest.raises(ConfigurationError) as caught:
            EventStoreSettings.from_env(environ={variable: value})
        assert caught.value.key == variable

    def test_reads_the_process_environment_by_default(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without ``environ``, os.environ is read."""
        monkeypatch.setenv("DYNAMO_ES_MAX_BATCH_SIZE", "7")
        assert EventStoreSettings.from_env().max_batch_size == 7
