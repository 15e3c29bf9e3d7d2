# Test hub settings: shorter waits after failed sign-ins, so lock-out tests run quickly.
c = get_config()  # noqa: F821
c.OnyxiaLocalAuthenticator.failed_login_delay = 0.05
c.OnyxiaLocalAuthenticator.allowed_failed_logins = 4
c.OnyxiaLocalAuthenticator.seconds_before_next_try = 120
