"""SoundCollage (new-class discovery in audio datasets) and CLAP curation, as literate nbdev notebooks regenerated with papermill

One package, three rooms on a shared base (`core`, `audio`, `datasets`, `synth`, `cli`): `soundcollage_nb.soundcollage` discovers new
classes in audio datasets (SoundCollage) and `soundcollage_nb.clap` trains CLAP models and curates unpaired audio and text
into Improvement-Sets. `soundcollage_nb.papers` runs both papers' experiments and regenerates their tables and figures."""

__version__ = "0.1.1"
