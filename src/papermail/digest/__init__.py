"""The digest: choosing each subscriber's papers (:mod:`.select`) and rendering the email (:mod:`.render`)."""
